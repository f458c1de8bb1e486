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

__all__ = ["obs_prune", "obs_greedy", "swap_scan", "bnb_run", "keep_more"]

FREE, PRUNED, KEPT = 0, 1, 2


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
    s = np.sort(vals[:m])
    t = 0.0
    for i in range(r):
        t += s[i]
    return t


@njit(cache=True)
def keep_more(st, G, b, tot, m):  # pragma: no cover - compiled
    """The best support that keeps the kept set ``K`` (``st == KEPT``) and exactly ``m`` (1 or 2) free
    weights: ``(error, i, j)`` (``j = -1`` for ``m = 1``), or ``(inf, -1, -1)`` when ``G_KK`` or a
    bordered block is numerically singular.

    With ``G_KK = L L^T`` (Cholesky), ``y = L^-1 b_K``, ``z_i = L^-1 G_Ki``, ``b = G w0``,
    ``tot = w0^T G w0``: ``err(K) = tot - |y|^2``; adding the set ``A`` lowers it by ``r_A^T S_AA^-1 r_A``
    with ``r_i = b_i - z_i.y`` and the Schur complement ``S_ij = G_ij - z_i.z_j``. Cost O(|K|^3 + |F| |K|^2)
    (+ |F|^2 |K| for pairs), where branching would evaluate chains of nodes of O(n^2) each. The Cholesky is
    written out (not ``np.linalg.cholesky``) so that a failing pivot returns instead of raising.
    """
    n = st.shape[0]
    kk = 0
    nf = 0
    for j in range(n):
        if st[j] == KEPT:
            kk += 1
        elif st[j] == FREE:
            nf += 1
    K = np.empty(kk, dtype=np.int64)
    F = np.empty(nf, dtype=np.int64)
    q = 0
    f = 0
    for j in range(n):
        if st[j] == KEPT:
            K[q] = j
            q += 1
        elif st[j] == FREE:
            F[f] = j
            f += 1
    L = np.zeros((kk, kk))
    for a in range(kk):
        for c in range(a + 1):
            acc = G[K[a], K[c]]
            for e in range(c):
                acc -= L[a, e] * L[c, e]
            if a == c:
                if acc <= 1e-12 * G[K[a], K[a]]:
                    return np.inf, -1, -1
                L[a, a] = np.sqrt(acc)
            else:
                L[a, c] = acc / L[c, c]
    y = np.empty(kk)
    for a in range(kk):
        acc = b[K[a]]
        for e in range(a):
            acc -= L[a, e] * y[e]
        y[a] = acc / L[a, a]
    base = tot  # err(K) = tot - |y|^2
    for a in range(kk):
        base -= y[a] * y[a]
    Z = np.empty((nf, kk))
    r = np.empty(nf)
    s = np.empty(nf)
    for t in range(nf):
        i = F[t]
        for a in range(kk):
            acc = G[K[a], i]
            for e in range(a):
                acc -= L[a, e] * Z[t, e]
            Z[t, a] = acc / L[a, a]
        den = G[i, i]
        num = b[i]
        for a in range(kk):
            den -= Z[t, a] * Z[t, a]
            num -= Z[t, a] * y[a]
        if den <= 1e-12 * G[i, i]:
            return np.inf, -1, -1
        s[t] = den
        r[t] = num
    best = -1.0
    bi = -1
    bj = -1
    if m == 1:
        for t in range(nf):
            g = r[t] * r[t] / s[t]
            if g > best:
                best = g
                bi = F[t]
        return max(base - best, 0.0), bi, -1
    for t in range(nf):
        for u in range(t + 1, nf):
            sij = G[F[t], F[u]]
            for a in range(kk):
                sij -= Z[t, a] * Z[u, a]
            det = s[t] * s[u] - sij * sij
            if det <= 1e-12 * s[t] * s[u]:
                return np.inf, -1, -1
            g = (r[t] * r[t] * s[u] - 2.0 * r[t] * r[u] * sij + r[u] * r[u] * s[t]) / det
            if g > best:
                best = g
                bi = F[t]
                bj = F[u]
    return max(base - best, 0.0), bi, bj


@njit(cache=True)
def _eval_node(
    d,
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
    Gk,
    bk,
    totk,
):  # pragma: no cover
    """Evaluate the node in slot ``d``: close it (leaf / bound cut, possibly improving ``UB``) -> 0,
    or choose the branching variable ``BJ[d]`` -> 1. ``T`` (n,), ``tconst``: a Lagrangian bound
    ``tconst - sum_K T - (largest positive T of the free set, as many as are still to keep)`` (see
    ``_prune_dual``); ``tconst = -inf`` leaves it out. ``Gk`` (n, n), ``bk = Gk w0``, ``totk = w0^T Gk w0``:
    a node with one or two weights left to keep is closed by :func:`keep_more` (``Gk`` of shape (0, 0): it is
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
    vals = np.empty((ns, nfree))
    m = 0
    for j in range(n):
        if ST[d, j] == FREE:
            wj = W[d, j]
            dj = wj * wj / max(HH[d, j, j], 1e-300)
            if dj < mind:
                mind = dj
                argmin = j
            if dj > maxd:
                maxd = dj
                argmax = j
            for q in range(ns):
                vals[q, m] = scal[q, j] * wj * wj
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
        scratch_w[:] = W[d]
        scratch_H[:, :] = HH[d]
        v = ERR[d]
        for j in range(n):
            if ST[d, j] == FREE:
                v += obs_prune(scratch_w, scratch_H, j)
        if v < UB[0]:
            UB[0] = v
            best_st[:] = ST[d]
            for j in range(n):
                if best_st[j] == FREE:
                    best_st[j] = PRUNED
        return 0
    # lower bound on any completion: monotonicity (one more prune at least) and the eigenvalue bound
    # for each diagonal scaling e = scal[q] (lams[q] = lambda_min(e^-1/2 G e^-1/2)):
    # err(P + Z) - err(P) >= lams[q] * sum_{j in Z} e_j w_j^2, |Z| = r.
    lb2 = 0.0
    for q in range(ns):
        lb2 = max(lb2, lams[q] * _sum_r_smallest(vals[q], m, r))
    lb = ERR[d] + max(mind, lb2)
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
    BND[d] = lb
    if lb >= UB[0] * (1.0 - rtol):
        return 0
    if Gk.shape[0] > 0 and nfree - r <= 2:
        # one or two weights left to keep: the best ones, exactly (a leaf instead of a subtree)
        v, i, i2 = keep_more(ST[d], Gk, bk, totk, nfree - r)
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
            return 0
    BJ[d] = argmax
    return 1


@njit(cache=True)
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
    Gk,
    bk,
    totk,
):  # pragma: no cover
    """Depth-first branch-and-bound for best-subset selection, resumable.

    State lives in the arrays (slot ``d`` = depth ``d``); ``ctl = [depth, started, done, nodes]``.
    Runs at most ``max_nodes`` node evaluations, then returns so the caller can check a time limit.
    Branching: the free weight with the largest pruning cost; child 1 keeps it, child 2 prunes it.
    ``scal`` (m, n) diagonal scalings ``e`` and ``lams`` (m,) ``lambda_min(e^-1/2 G e^-1/2)`` of the
    eigenvalue bounds (the best of the m is used). ``T``, ``tconst``: the optional Lagrangian node bound
    of :func:`_eval_node`; ``Gk``, ``bk``, ``totk``: its exact leaves with one or two weights left to keep.
    """
    n = W.shape[1]
    scratch_w = np.empty(n)
    scratch_H = np.empty((n, n))
    evals = 0
    if ctl[1] == 0:
        ctl[1] = 1
        ctl[3] += 1
        if (
            _eval_node(
                0,
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
                Gk,
                bk,
                totk,
            )
            == 0
        ):
            ctl[2] = 1
            return
        PH[0] = 0
        ctl[0] = 0
    d = ctl[0]
    while evals < max_nodes:
        if d < 0:
            ctl[2] = 1
            ctl[0] = d
            return
        if PH[d] >= 2 or BND[d] >= UB[0] * (1.0 - rtol):
            d -= 1
            continue
        j = BJ[d]
        if PH[d] == 1:
            # the prune child's own bound is at least ERR + w_j^2 / H_jj: skip it without the update
            dj = W[d, j] * W[d, j] / max(HH[d, j, j], 1e-300)
            if ERR[d] + dj >= UB[0] * (1.0 - rtol):
                PH[d] = 2
                d -= 1
                continue
        c = d + 1
        W[c] = W[d]
        HH[c] = HH[d]
        ST[c] = ST[d]
        ERR[c] = ERR[d]
        NP[c] = NP[d]
        NK[c] = NK[d]
        if PH[d] == 0:
            ST[c, j] = KEPT
            NK[c] += 1
        else:
            ST[c, j] = PRUNED
            NP[c] += 1
            ERR[c] += obs_prune(W[c], HH[c], j)
        PH[d] += 1
        evals += 1
        ctl[3] += 1
        if (
            _eval_node(
                c,
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
                Gk,
                bk,
                totk,
            )
            == 1
        ):
            PH[c] = 0
            d = c
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
