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

__all__ = ["obs_prune", "obs_greedy", "swap_scan", "bnb_run"]

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
    gdiag,
    lam,
    UB,
    best_st,
    scratch_w,
    scratch_H,
    rtol,
    T,
    tconst,
):  # pragma: no cover
    """Evaluate the node in slot ``d``: close it (leaf / bound cut, possibly improving ``UB``) -> 0,
    or choose the branching variable ``BJ[d]`` -> 1. ``T`` (n,), ``tconst``: a Lagrangian bound
    ``tconst - sum_K T - (largest positive T of the free set, as many as are still to keep)`` (see
    ``_prune_dual``); ``tconst = -inf`` leaves it out."""
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
    vals = np.empty(nfree)
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
            vals[m] = gdiag[j] * wj * wj
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
    # ||w_Z||^2-weighted: err(P + Z) - err(P) >= lambda_min(C) * sum_{j in Z} G_jj w_j^2, |Z| = r.
    lb2 = lam * _sum_r_smallest(vals, m, r)
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
    BJ[d] = argmax
    return 1


@njit(cache=True)
def bnb_run(
    W, HH, ST, ERR, NP, NK, BND, BJ, PH, ctl, n_prune, gdiag, lam, UB, best_st, max_nodes, rtol, T, tconst
):  # pragma: no cover
    """Depth-first branch-and-bound for best-subset selection, resumable.

    State lives in the arrays (slot ``d`` = depth ``d``); ``ctl = [depth, started, done, nodes]``.
    Runs at most ``max_nodes`` node evaluations, then returns so the caller can check a time limit.
    Branching: the free weight with the largest pruning cost; child 1 keeps it, child 2 prunes it.
    ``T``, ``tconst``: the optional Lagrangian node bound of :func:`_eval_node`.
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
                gdiag,
                lam,
                UB,
                best_st,
                scratch_w,
                scratch_H,
                rtol,
                T,
                tconst,
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
                gdiag,
                lam,
                UB,
                best_st,
                scratch_w,
                scratch_H,
                rtol,
                T,
                tconst,
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
