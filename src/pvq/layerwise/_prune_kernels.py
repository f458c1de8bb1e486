"""Compiled (numba) hot loops of the pruning solvers: OBS updates, swap search, best-subset branch-and-bound.

Notation (paper eq. 7, and Hassibi & Stork's OBS): ``G = X^T X`` (n, n), ``w0`` (n,) the dense row,
``H = G_RR^-1`` embedded in (n, n) with zero rows/columns on the pruned set, ``w`` the least-squares
optimum on the unpruned set ``R``. Pruning ``j`` costs ``w_j^2 / H_jj`` and updates
``w -= (w_j / H_jj) H[:, j]``, ``H -= H[:, j] H[j, :] / H_jj`` (a rank-one downdate).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from pvq.layerwise._obs_kernels import drop_coordinate

__all__ = ["obs_prune", "obs_greedy", "swap_scan", "bnb_run", "keep_leaf", "keep_into", "lambda_max_upper"]

FREE, PRUNED, KEPT = 0, 1, 2
FEW_LARGEST = 16  # _sum_r_smallest: up to this many left out, the total less the largest


@njit(cache=True)
def obs_prune(w, H, j):  # pragma: no cover - compiled
    """Prune ``j`` in place; return the increase of the error ``w_j^2 / H_jj``."""
    n = w.shape[0]
    hjj = H[j, j]
    if hjj <= 0.0:
        hjj = 1e-300
    a = w[j] / hjj
    delta = w[j] * a
    hj = H[:, j].copy()
    for i in range(n):
        w[i] -= a * hj[i]
    w[j] = 0.0
    drop_coordinate(H, j, hj, hjj)
    return delta


@njit(cache=True)
def obs_greedy(w0, Hinv, n_prune):  # pragma: no cover - compiled
    """Greedy OBS backward elimination: prune the cheapest weight ``n_prune`` times. Returns (w, error)."""
    n = w0.shape[0]
    w = w0.copy()
    H = Hinv.copy()
    pruned = np.zeros(n, dtype=np.bool_)
    err = 0.0
    for _ in range(n_prune):
        best = -1
        bestd = np.inf
        for j in range(n):
            if not pruned[j]:
                d = w[j] * w[j] / max(H[j, j], 1e-300)
                if d < bestd:
                    bestd = d
                    best = j
        err += obs_prune(w, H, best)
        pruned[best] = True
    return w, err


@njit(cache=True)
def swap_scan(G, b, keep, S, H, u, E, jj_lo, jj_hi, best_gain):  # pragma: no cover - compiled
    """One slice of a best-improvement 1-swap pass on the support ``keep`` (bool): the best exchange of
    a kept weight ``S[jj]``, ``jj_lo <= jj < jj_hi``, for a pruned one.

    Maximises the explained energy ``E(S) = b_S^T G_SS^-1 b_S`` (``b = G w0``; the error is
    ``w0^T G w0 - E(S)``); ``H = G_SS^-1``, ``u = H b_S``, ``E = b_S^T u``. A swap out ``j`` / in ``i`` is
    scored exactly by an OBS downdate followed by a bordered-inverse update, O(k^2) per pair. The
    caller checks its deadline between slices. Returns ``(gain, out, in)``; ``out = -1`` when no swap
    gains more than ``best_gain``.
    """
    n = G.shape[0]
    k = S.shape[0]
    best_out = -1
    best_in = -1
    g = np.empty(k)
    for jj in range(jj_lo, jj_hi):
        hjj = H[jj, jj]
        if hjj <= 0.0:
            continue
        Hd = H - np.outer(H[:, jj], H[jj, :]) / hjj
        ud = u - (u[jj] / hjj) * H[:, jj]
        Ed = E - u[jj] * u[jj] / hjj
        for i in range(n):
            if keep[i]:
                continue
            for a in range(k):
                g[a] = G[S[a], i]
            g[jj] = 0.0
            Hg = Hd @ g
            denom = G[i, i] - g @ Hg
            if denom <= 1e-14 * G[i, i]:
                continue
            num = b[i] - g @ ud
            gain = Ed + num * num / denom - E
            if gain > best_gain:
                best_gain = gain
                best_out = S[jj]
                best_in = i
    return best_gain, best_out, best_in


@njit(cache=True)
def _sum_r_smallest(vals, m, r):  # pragma: no cover - compiled
    """The sum of the ``r`` smallest of ``vals[:m]`` (a lower bound on it, within rounding). When at most
    ``FEW_LARGEST`` are left out: the total less the largest. Otherwise Hoare's selection puts them first
    in O(m) expected time (reordering ``vals`` in place), where a sort took O(m log m) and an allocation
    (measured: with two eigenvalue scalings the sorts took a sixth of the search's time on n = 64 rows)."""
    if r <= 0:
        return 0.0
    if r < m <= r + FEW_LARGEST:
        # All but a few: the total less the few largest, in one pass with a few well-predicted comparisons
        # per value (measured: the search 1.4x faster on n = 64 rows, where the selection's unpredictable
        # branches took that much), less a rounding slack for the cancellation, so that the result stays
        # a lower bound (the bounds need no more: they close nodes within rtol anyway)
        top = np.full(FEW_LARGEST, -np.inf)
        q = m - r
        tot = 0.0
        mag = 0.0
        for i in range(m):
            x = vals[i]
            tot += x
            mag += abs(x)
            if x > top[q - 1]:
                l = q - 1
                while l > 0 and top[l - 1] < x:
                    top[l] = top[l - 1]
                    l -= 1
                top[l] = x
        big = 0.0
        for l in range(q):
            big += top[l]
        return tot - big - 4e-16 * m * mag
    if r < m:
        k = r - 1
        lo = 0
        hi = m - 1
        while lo < hi:
            a = vals[lo]
            b = vals[(lo + hi) // 2]
            c = vals[hi]
            pivot = max(min(a, b), min(max(a, b), c))  # median of three
            i = lo
            j = hi
            while i <= j:
                while vals[i] < pivot:
                    i += 1
                while vals[j] > pivot:
                    j -= 1
                if i <= j:
                    t = vals[i]
                    vals[i] = vals[j]
                    vals[j] = t
                    i += 1
                    j -= 1
            if k <= j:
                hi = j
            elif k >= i:
                lo = i
            else:
                break
    t = 0.0
    for i in range(min(r, m)):
        t += vals[i]
    return t


@njit(cache=True)
def lambda_max_upper(A, m, certify, mu_stop):  # pragma: no cover - compiled
    """A certified upper bound on ``lambda_max`` of the symmetric positive semi-definite ``A[:m, :m]``.

    Always the least of the Frobenius norm and the largest absolute row sum (both O(m^2); the Frobenius
    norm is tight when one eigenvalue dominates the spectrum, as in ill-conditioned blocks). With
    ``certify``: 12 power-iteration steps give an estimate ``rho <= lambda_max``, and a successful
    Cholesky factorisation of ``c rho I - A`` (c = 1.02, then 1.2) proves ``lambda_max < c rho`` (O(m^3 / 6)).
    A relative margin of ``m * 1e-13`` covers the rounding of the factorisation (backward error about
    ``m^2 u (c rho + max A_ii)``, u = 1.1e-16, for ``m <= 200``). Stops early, returning a looser value,
    once a value ``<= mu_stop`` is found or when the certified value could not get below ``mu_stop``.
    """
    fro = 0.0
    inf = 0.0
    for i in range(m):
        row = 0.0
        for j in range(m):
            a = A[i, j]
            fro += a * a
            row += abs(a)
        if row > inf:
            inf = row
    best = min(np.sqrt(fro), inf)
    if not certify or m < 3 or best <= mu_stop:
        return best
    v = np.empty(m)
    for i in range(m):
        v[i] = 1.0 + 0.01 * (i % 7)
    rho = 0.0
    u = np.empty(m)
    for _ in range(12):
        nrm = 0.0
        for i in range(m):
            nrm += v[i] * v[i]
        nrm = np.sqrt(nrm)
        for i in range(m):
            v[i] /= nrm
        rq = 0.0
        for i in range(m):
            acc = 0.0
            for j in range(m):
                acc += A[i, j] * v[j]
            u[i] = acc
            rq += v[i] * acc
        rho = rq
        for i in range(m):
            v[i] = u[i]
    if rho <= 0.0:
        return best
    L = np.empty((m, m))
    for c in (1.02, 1.2):
        mu = c * rho
        if mu >= best or mu > mu_stop:
            return best
        ok = True
        for a in range(m):
            for b in range(a + 1):
                acc = (mu if a == b else 0.0) - A[a, b]
                for e in range(b):
                    acc -= L[a, e] * L[b, e]
                if a == b:
                    if acc <= 0.0:
                        ok = False
                        break
                    L[a, a] = np.sqrt(acc)
                else:
                    L[a, b] = acc / L[b, b]
            if not ok:
                break
        if ok:
            return mu * (1.0 + m * 1e-13)
    return best


@njit(cache=True)
def node_spectral_bound(d, h, W, HH, ST, r, dj_free, certify, need):  # pragma: no cover - compiled
    """Lower bound on the cost of the ``r`` prunes still to make at node ``d``: pruning ``A`` (``|A| = r``)
    of the free set ``F`` costs ``w_A^T (H_AA)^-1 w_A >= sum_A e_i w_i^2 / lambda_max(E^1/2 H_FF E^1/2)``
    (``H = HH[h]``; interlacing, since ``A`` is a subset of ``F``). With the node's Jacobi scaling
    ``e_i = 1 / H_ii`` the numerator is at least the sum of the ``r`` cheapest single OBS costs ``dj_free``
    (the free weights' ``w_i^2 / H_ii`` in index order). ``lambda_max`` from :func:`lambda_max_upper`;
    ``need``: the bound that would close the node (the certification is skipped when it cannot reach it)."""
    n = W.shape[1]
    m = dj_free.shape[0]
    F = np.empty(m, dtype=np.int64)
    s = np.empty(m)
    f = 0
    for j in range(n):
        if ST[d, j] == FREE:
            F[f] = j
            s[f] = 1.0 / np.sqrt(max(HH[h, j, j], 1e-300))
            f += 1
    A = np.empty((m, m))
    for a in range(m):
        for b in range(m):
            A[a, b] = HH[h, F[a], F[b]] * s[a] * s[b]
    num = _sum_r_smallest(dj_free, m, r)
    mu = lambda_max_upper(A, m, certify, num / need if need > 0.0 else np.inf)
    if mu <= 0.0:
        return 0.0
    return num / mu


@njit(cache=True)
def _sweep(Ms, vs, Md, vd, j, piv, act, m):  # pragma: no cover - compiled
    """The rank-one step shared by both sides of the search (an OBS downdate of ``H`` when pruning, a
    Schur-complement sweep of ``S`` when keeping): ``Md = Ms - Ms[:, j] Ms[j, :] / piv`` and
    ``vd = vs - Ms[:, j] vs_j / piv`` on the rows ``act[:m]``. Returns ``vs_j / piv``.

    Each of those rows is updated over all ``n`` columns, the stale ones (outside ``act``) included:
    their values are never read, and a contiguous row vectorises where the gather over ``act`` did not
    (measured: a 1.3x faster search on n = 64 rows, the same nodes)."""
    a = vs[j] / piv
    # row j stands for column j: the matrices are symmetric up to rounding, and only a row is contiguous
    col = Ms[j]
    n = Ms.shape[1]
    for t in range(m):
        i = act[t]
        cij = Ms[i, j]
        vd[i] = vs[i] - a * cij
        f = cij / piv
        Mi = Ms[i]
        Di = Md[i]
        for l in range(n):
            Di[l] = Mi[l] - f * col[l]
    return a


@njit(cache=True)
def prune_into(ws, Hs, wd, Hd, j, st, act):  # pragma: no cover - compiled
    """OBS-prune ``j`` from ``(ws, Hs)`` into ``(wd, Hd)`` (copy and rank-one downdate fused); return
    ``ws_j^2 / Hs_jj``. Only the entries on the remaining set (``st != PRUNED``; ``st[j]`` already
    ``PRUNED``) are written: the rest of ``wd`` and ``Hd`` is stale and never read, so a node costs
    O(|R|^2) instead of O(n^2). ``act`` (n,) int scratch."""
    n = ws.shape[0]
    m = 0
    for i in range(n):
        if st[i] != PRUNED:
            act[m] = i
            m += 1
    hjj = Hs[j, j]
    if hjj <= 0.0:
        hjj = 1e-300
    a = _sweep(Hs, ws, Hd, wd, j, hjj, act, m)
    wd[j] = 0.0
    return ws[j] * a


@njit(cache=True)
def prune_all_free(st, w, H, nfree, sw, sH):  # pragma: no cover - compiled
    """The cost of pruning every free weight (``st == FREE``) from ``(w, H)``: ``w_F^T (H_FF)^-1 w_F``,
    by successive OBS prunes on a compact copy of the free block (``sw`` (n,), ``sH`` (n, n) scratch)."""
    n = st.shape[0]
    F = np.empty(nfree, dtype=np.int64)
    f = 0
    for i in range(n):
        if st[i] == FREE:
            F[f] = i
            f += 1
    for a in range(nfree):
        sw[a] = w[F[a]]
        for b in range(nfree):
            sH[a, b] = H[F[a], F[b]]
    v = 0.0
    for t in range(nfree):
        hjj = sH[t, t]
        if hjj <= 0.0:
            hjj = 1e-300
        a = sw[t] / hjj
        v += sw[t] * a
        for i in range(t + 1, nfree):
            sw[i] -= a * sH[i, t]
        for i in range(t + 1, nfree):
            fi = sH[i, t] / hjj
            for l in range(t + 1, nfree):
                sH[i, l] -= fi * sH[l, t]
    return v


@njit(cache=True)
def keep_into(Ss, gs, Sd, gd, j, st, act, ref):  # pragma: no cover - compiled
    """Move ``j`` from the free set to the kept set: one sweep of the Schur complement ``Ss`` (n, n) of the
    free set given the kept set and of the residual correlations ``gs`` (n,), written into ``(Sd, gd)``
    on the new free set (``st == FREE``; ``st[j]`` already ``KEPT``; other entries stale, never read):
    ``S' = S - S[:, j] S[j, :] / S_jj``, ``g' = g - S[:, j] g_j / S_jj``. Returns the fall of ``err(K)``,
    ``g_j^2 / S_jj``, or -1 when the pivot is numerically zero (``S_jj <= 1e-12 ref``, ``ref``: the pivot's
    value at the search's root)."""
    n = gs.shape[0]
    m = 0
    for i in range(n):
        if st[i] == FREE:
            act[m] = i
            m += 1
    sjj = Ss[j, j]
    if not sjj > 1e-12 * ref:
        return -1.0
    a = _sweep(Ss, gs, Sd, gd, j, sjj, act, m)
    return gs[j] * a


@njit(cache=True)
def keep_leaf(st, S, g, base, m, need):  # pragma: no cover - compiled
    """The best support that keeps the kept set ``K`` and exactly ``m`` (1, 2 or 3) free weights, from the
    keep-side state: ``S`` the Schur complement of the free set ``F`` given ``K``, ``g`` the residual
    correlations, ``base = err(K)``. Adding ``T`` lowers the error by ``g_T^T S_TT^-1 g_T``; only sets
    that lower it by more than ``need`` (the caller's incumbent: ``base - UB``) are of interest.

    Returns ``(error, i, j, l)`` (the weights to keep, ``-1`` past ``m``) for the best such set;
    ``(inf, -2, -1, -1)`` when no set lowers the error by more than ``need`` (the node is closed);
    ``(inf, -1, -1, -1)`` when a block is numerically singular (a pivot ``<= 1e-12`` of its diagonal; the
    caller branches instead). O(|F|^m): pairs O(1) each; triples a 2x2 inverse per pair, then O(1) and
    no division per third weight (the test ``gain > best`` is cross-multiplied).
    """
    n = st.shape[0]
    return keep_leaf_into(st, S, g, base, m, need, np.empty((2, n), dtype=np.int64), np.empty((3, n)))


@njit(cache=True)
def keep_leaf_into(st, S, g, base, m, need, iw, fw):  # pragma: no cover - compiled
    """:func:`keep_leaf` with the caller's scratch ``iw`` (2, n) int and ``fw`` (3, n): no allocation
    (pairs and singles; triples still copy ``S_FF``)."""
    n = st.shape[0]
    F = iw[0]
    fr = iw[1]  # 1 on the free set: the mask of the pairs' vectorised pass
    s = fw[0]
    r = fw[1]
    sd = fw[2]  # S_jj on the free set, 0 elsewhere: the same pass's diagonal
    nf = 0
    for i in range(n):
        fr[i] = 0
        sd[i] = 0.0
        if st[i] == FREE:
            F[nf] = i
            fr[i] = 1
            nf += 1
    for t in range(nf):
        s[t] = S[F[t], F[t]]
        r[t] = g[F[t]]
        if not s[t] > 0.0:
            return np.inf, -1, -1, -1
    best = need
    bt = -1
    bu = -1
    bv = -1
    if m == 1:
        for t in range(nf):
            gg = r[t] * r[t] / s[t]
            if gg > best:
                best = gg
                bt = t
        if bt < 0:
            return np.inf, -2, -1, -1
        return max(base - best, 0.0), F[bt], -1, -1
    if m == 2:
        # Each row t first tests all its partners at once: one contiguous pass over the original indices
        # after F[t], the non-free ones masked out (their entries are stale, never used), that only counts
        # the better and the singular pairs, so it vectorises (no gather, no division, no branch); only a
        # row with a better partner is scanned again to find it. Measured (3 interleaved runs, 4 rows of
        # benchmark part 4, n = 64): the search 1.05-1.2x faster, the same nodes.
        for t in range(nf):
            sd[F[t]] = s[t]
        for t in range(nf):
            ft = F[t]
            St = S[ft]
            rt = r[t]
            stt = s[t]
            hit = 0
            sing = 0
            # unsigned indices: with signed ones numba's wrap-around of negative indices keeps LLVM from
            # vectorising the loop
            for u in range(np.uint64(ft + 1), np.uint64(n)):
                stu = St[u]
                su = sd[u]
                ru = g[u]
                det = stt * su - stu * stu
                num = rt * rt * su - 2.0 * rt * ru * stu + ru * ru * stt
                hit += fr[u] if num > best * det else 0
                sing += fr[u] if det <= 1e-12 * stt * su else 0
            if sing:
                return np.inf, -1, -1, -1
            if not hit:
                continue
            for uu in range(t + 1, nf):
                stu = St[F[uu]]
                det = stt * s[uu] - stu * stu
                num = rt * rt * s[uu] - 2.0 * rt * r[uu] * stu + r[uu] * r[uu] * stt
                if num > best * det:
                    best = num / det
                    bt = t
                    bu = uu
        if bt < 0:
            return np.inf, -2, -1, -1
        return max(base - best, 0.0), F[bt], F[bu], -1
    Sc = np.empty((nf, nf))  # compact copy of S_FF: contiguous rows in the loops below
    for t in range(nf):
        for u in range(nf):
            Sc[t, u] = S[F[t], F[u]]
    for t in range(nf):
        for u in range(t + 1, nf):
            stu = Sc[t, u]
            det = s[t] * s[u] - stu * stu
            if det <= 1e-12 * s[t] * s[u]:
                return np.inf, -1, -1, -1
            idet = 1.0 / det
            g2 = (r[t] * r[t] * s[u] - 2.0 * r[t] * r[u] * stu + r[u] * r[u] * s[t]) * idet
            # third weight v: bordered update of the pair's 2x2 inverse
            a1 = s[u] * idet
            a2 = -stu * idet
            a3 = s[t] * idet
            rt = r[t]
            ru = r[u]
            for v in range(u + 1, nf):
                ct = Sc[t, v]
                cu = Sc[u, v]
                p = a1 * ct + a2 * cu
                q = a2 * ct + a3 * cu
                s3 = s[v] - ct * p - cu * q
                if s3 <= 1e-12 * s[v]:
                    return np.inf, -1, -1, -1
                r3 = r[v] - rt * p - ru * q
                if r3 * r3 > (best - g2) * s3:
                    best = g2 + r3 * r3 / s3
                    bt = t
                    bu = u
                    bv = v
    if bt < 0:
        return np.inf, -2, -1, -1
    return max(base - best, 0.0), F[bt], F[bu], F[bv]


@njit(cache=True)
def _eval_node(
    d,
    h,
    W,
    HH,
    ST,
    ERR,
    NP,
    NK,
    BND,
    BJ,
    n_prune,
    scal,
    lams,
    UB,
    best_st,
    scratch_w,
    scratch_H,
    rtol,
    T,
    tconst,
    SS,
    SG,
    EK,
    SP,
    SV,
    spec,
    leafq,
    work,
    iwork,
):  # pragma: no cover
    """Evaluate the node in slot ``d`` (its ``w`` and ``H`` in slot ``h`` of ``W``, ``HH``): close it (leaf / bound cut, possibly improving ``UB``) -> 0,
    or choose the branching variable ``BJ[d]`` -> 1. ``T`` (n,), ``tconst``: a Lagrangian bound
    ``tconst - sum_K T - (largest positive T of the free set, as many as are still to keep)`` (see
    ``_prune_dual``); ``tconst = -inf`` leaves it out. ``SS``, ``SG``, ``EK``, ``SP``, ``SV``: the keep-side
    state (slot ``SP[d]`` of ``SS``, ``SG``: the Schur complement of the free set given the kept set and its
    residual correlations; ``EK[d] = err(K)``; ``SV[d]``: that state is numerically sound): a node with at
    most ``leafq`` weights left to keep is closed by :func:`keep_leaf` (``leafq = 0``: it is
    branched on)."""
    n = W.shape[1]
    r = n_prune - NP[d]
    if r <= 0:
        if ERR[d] < UB[0]:
            UB[0] = ERR[d]
            best_st[:] = ST[d]
        return 0
    nfree = n - NP[d] - NK[d]
    # marginal costs of pruning each free weight, and the scaled energies for the eigenvalue bound
    mind = np.inf
    argmin = -1
    maxd = -1.0
    argmax = -1
    ns = scal.shape[0]
    vals = work[:ns]  # scratch of the caller's, no allocation per node
    djf = work[ns]
    m = 0
    for j in range(n):
        if ST[d, j] == FREE:
            wj = W[h, j]
            dj = wj * wj / max(HH[h, j, j], 1e-300)
            if dj < mind:
                mind = dj
                argmin = j
            if dj > maxd:
                maxd = dj
                argmax = j
            for q in range(ns):
                vals[q, m] = scal[q, j] * wj * wj
            djf[m] = dj
            m += 1
    if r == 1:
        # one prune left: the best completion is the cheapest single prune (exact)
        v = ERR[d] + mind
        if v < UB[0]:
            UB[0] = v
            best_st[:] = ST[d]
            for j in range(n):
                if best_st[j] == FREE:
                    best_st[j] = KEPT
            best_st[argmin] = PRUNED
        return 0
    if nfree == r:
        # every free weight must go: a leaf
        v = ERR[d] + prune_all_free(ST[d], W[h], HH[h], nfree, scratch_w, scratch_H)
        if v < UB[0]:
            UB[0] = v
            best_st[:] = ST[d]
            for j in range(n):
                if best_st[j] == FREE:
                    best_st[j] = PRUNED
        return 0
    if nfree - r <= leafq and SV[d] != 0:
        # at most leafq weights left to keep: the best ones, exactly (a leaf instead of a subtree), before
        # the bounds below (it closes the node whatever they say, unless a block is singular)
        if ERR[d] + mind >= UB[0] * (1.0 - rtol):
            BND[d] = ERR[d] + mind
            return 0
        sp = SP[d]
        v, i, i2, i3 = keep_leaf_into(
            ST[d], SS[sp], SG[sp], EK[d], nfree - r, EK[d] - UB[0], iwork, work[ns + 1 :]
        )
        if i == -2:
            return 0
        if i >= 0:
            if v < UB[0]:
                UB[0] = v
                best_st[:] = ST[d]
                for j in range(n):
                    if best_st[j] == FREE:
                        best_st[j] = PRUNED
                best_st[i] = KEPT
                if i2 >= 0:
                    best_st[i2] = KEPT
                if i3 >= 0:
                    best_st[i3] = KEPT
            return 0
    # lower bound on any completion: monotonicity (one more prune at least) and the eigenvalue bound
    # for each diagonal scaling e = scal[q] (lams[q] = lambda_min(e^-1/2 G e^-1/2)):
    # err(P + Z) - err(P) >= lams[q] * sum_{j in Z} e_j w_j^2, |Z| = r.
    # The last scaling first (with eigen="both" the stronger one at the root), and the others only while
    # the node is still open: a closed node's bound is never read again, so the tree is the same.
    lb2 = mind
    close = UB[0] * (1.0 - rtol) - ERR[d]
    for q in range(ns - 1, -1, -1):
        if lb2 >= close:
            break
        lb2 = max(lb2, lams[q] * _sum_r_smallest(vals[q], m, r))
    lb = ERR[d] + lb2
    if tconst > -np.inf:
        tv = np.empty(nfree)
        tk = 0.0
        q = 0
        for j in range(n):
            if ST[d, j] == FREE:
                tv[q] = T[j]
                q += 1
            elif ST[d, j] == KEPT:
                tk += T[j]
        tv = np.sort(tv[:q])
        lb3 = tconst - tk
        for i in range(min(nfree - r, q)):  # nfree - r: weights still to keep
            x = tv[q - 1 - i]
            if x <= 0.0:
                break
            lb3 -= x
        if lb3 > lb:
            lb = lb3
    if spec > 0 and lb < UB[0] * (1.0 - rtol) and r >= 2:
        # the node's own spectral bound: Frobenius / row-sum, then (spec 2) a certified power iteration
        need = UB[0] * (1.0 - rtol) - ERR[d]
        lb4 = ERR[d] + node_spectral_bound(d, h, W, HH, ST, r, djf[:nfree], spec > 1, need)
        if lb4 > lb:
            lb = lb4
    BND[d] = lb
    if lb >= UB[0] * (1.0 - rtol):
        return 0
    BJ[d] = argmax
    return 1


@njit(cache=True, nogil=True)
def bnb_run(
    W,
    HH,
    ST,
    ERR,
    NP,
    NK,
    BND,
    BJ,
    PH,
    HP,
    ctl,
    n_prune,
    scal,
    lams,
    UB,
    best_st,
    max_nodes,
    rtol,
    T,
    tconst,
    SS,
    SG,
    EK,
    SP,
    SV,
    spec,
    leafq,
):  # pragma: no cover
    """Depth-first branch-and-bound for best-subset selection, resumable.

    State lives in the arrays (slot ``d`` = depth ``d``); ``ctl = [depth, started, done, nodes]`` (a
    ``ctl`` of length 44 also counts, for diagnostics, the evaluations ``ctl[4 + q]`` and branchings
    ``ctl[24 + q]`` of nodes with ``q`` weights left to keep, ``q`` capped at 19).
    Runs at most ``max_nodes`` node evaluations, then returns so the caller can check a time limit.
    Branching: the free weight with the largest pruning cost; child 1 keeps it, child 2 prunes it.
    ``scal`` (m, n) diagonal scalings ``e`` and ``lams`` (m,) ``lambda_min(e^-1/2 G e^-1/2)`` of the
    eigenvalue bounds (the best of the m is used). ``T``, ``tconst``: the optional Lagrangian node bound
    of :func:`_eval_node`; ``SS``, ``SG``, ``EK``, ``SP``, ``SV`` (slot 0 and ``EK[0]``, ``SV[0]`` set by the
    caller: ``G``, ``G w0``, ``w0^T G w0``, 1): the keep-side state of its exact leaves with at most
    ``leafq`` weights left to keep. A keep child updates it (one sweep, O(|F|^2)) and shares its parent's
    ``w``, ``H``; a prune child updates ``w``, ``H`` (OBS, O(|R|^2)) and shares its parent's keep-side state.
    A prune child writes slot ``NP`` of ``W``, ``HH`` and a keep child slot ``NK`` of ``SS``, ``SG`` (no
    ancestor of a node holds the same count), so ``W``, ``HH`` need ``n_prune + 1`` slots and ``SS``, ``SG``
    ``k + 1``: together as much memory as one (n + 2, n, n) array. Slot 0 is the root's.
    """
    n = W.shape[1]
    scratch_w = np.empty(n)
    scratch_H = np.empty((n, n))
    act = np.empty(n, dtype=np.int64)
    work = np.empty((scal.shape[0] + 4, n))
    iwork = np.empty((2, n), dtype=np.int64)
    evals = 0
    c = -1  # a node to evaluate: the root on a fresh start (slot 0), else the child just made
    if ctl[1] == 0:
        ctl[1] = 1
        ctl[3] += 1
        HP[0] = 0
        c = 0
    d = ctl[0]
    while True:
        if c >= 0:
            if (
                _eval_node(
                    c,
                    HP[c],
                    W,
                    HH,
                    ST,
                    ERR,
                    NP,
                    NK,
                    BND,
                    BJ,
                    n_prune,
                    scal,
                    lams,
                    UB,
                    best_st,
                    scratch_w,
                    scratch_H,
                    rtol,
                    T,
                    tconst,
                    SS,
                    SG,
                    EK,
                    SP,
                    SV,
                    spec,
                    leafq,
                    work,
                    iwork,
                )
                == 1
            ):
                PH[c] = 0
                d = c
                if c > 0 and ctl.shape[0] > 4:
                    ctl[24 + max(min(n - n_prune - NK[c], 19), 0)] += 1
            elif c == 0:
                ctl[2] = 1  # the root closed at once
                return
            c = -1
        if evals >= max_nodes:
            break
        if d < 0:
            ctl[2] = 1
            ctl[0] = d
            return
        if PH[d] >= 2 or BND[d] >= UB[0] * (1.0 - rtol):
            d -= 1
            continue
        j = BJ[d]
        h = HP[d]
        if PH[d] == 1:
            # the prune child's own bound is at least ERR + w_j^2 / H_jj: skip it without the update
            dj = W[h, j] * W[h, j] / max(HH[h, j, j], 1e-300)
            if ERR[d] + dj >= UB[0] * (1.0 - rtol):
                PH[d] = 2
                d -= 1
                continue
        c = d + 1
        ST[c] = ST[d]
        ERR[c] = ERR[d]
        NP[c] = NP[d]
        NK[c] = NK[d]
        if PH[d] == 0:
            # keeping changes neither w nor H: the child reads its parent's slot
            ST[c, j] = KEPT
            NK[c] += 1
            HP[c] = h
            SP[c] = NK[c]  # the keep children on a path have distinct NK: one slot each
            EK[c] = EK[d]
            SV[c] = 0
            if leafq > 0 and SV[d] != 0:
                gain = keep_into(SS[SP[d]], SG[SP[d]], SS[SP[c]], SG[SP[c]], j, ST[c], act, SS[0, j, j])
                if gain >= 0.0:
                    EK[c] -= gain
                    SV[c] = 1
        else:
            ST[c, j] = PRUNED
            NP[c] += 1
            HP[c] = NP[c]  # the prune children on a path have distinct NP: one slot each
            SP[c] = SP[d]
            EK[c] = EK[d]
            SV[c] = SV[d]
            ERR[c] += prune_into(W[h], HH[h], W[HP[c]], HH[HP[c]], j, ST[c], act)
        PH[d] += 1
        evals += 1
        ctl[3] += 1
        if ctl.shape[0] > 4:  # diagnostics: evaluations by the number of weights left to keep
            qq = min(n - n_prune - NK[c], 19)
            ctl[4 + max(qq, 0)] += 1
    ctl[0] = d


def open_bound(BND: np.ndarray, PH: np.ndarray, ctl: np.ndarray, UB: float) -> float:
    """Global lower bound of a stopped search: the least bound among nodes with unexplored children."""
    if ctl[2]:
        return UB
    d = int(ctl[0])
    lb = UB
    for i in range(d + 1):
        if PH[i] < 2:
            lb = min(lb, float(BND[i]))
    return lb
