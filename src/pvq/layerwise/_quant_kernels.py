"""Compiled (numba) hot loops of the quantization solvers: 1-opt and box-constrained sphere decoding.

Integer units throughout: ``c = w0 / scale`` (n,) is the real target, ``z`` (n,) integers in
``[lo, hi]``, and the objective ``(z - c)^T G (z - c)`` (times ``scale^2`` for the output error, eq. 4).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["one_opt", "se_run", "se_open_bound"]


@njit(cache=True)
def one_opt(G, c, z, lo, hi, max_sweeps):  # pragma: no cover - compiled
    """Coordinate descent over integers (1-opt): set each ``z_i`` to its best value given the others,
    within ``[lo, hi]``, until a sweep changes nothing. ``z`` (float64 holding integers) is modified."""
    n = z.shape[0]
    r = G @ (z - c)  # gradient / 2
    for _ in range(max_sweeps):
        changed = False
        for i in range(n):
            gii = G[i, i]
            if gii <= 0.0:
                continue
            t = np.floor(-r[i] / gii + 0.5)
            zi = min(max(z[i] + t, lo), hi)
            t = zi - z[i]
            if t != 0.0 and 2.0 * t * r[i] + t * t * gii < 0.0:
                z[i] = zi
                for l in range(n):
                    r[l] += t * G[l, i]
                changed = True
        if not changed:
            break
    return z


@njit(cache=True)
def se_run(
    R, c, lo, hi, best_z, best_d, z, center, dist, up, dn, ctl, max_nodes, sig, stale, rs
):  # pragma: no cover
    """Schnorr-Euchner depth-first enumeration of ``||R (z - c)||^2 < best_d[0]`` over the integer box.

    ``R`` (n, n) upper triangular (``G = R^T R`` in the search order); level ``n - 1`` is decided
    first; at each level the values come in order of distance from the conditional centre
    ``c_k - sum_{j>k} R_kj (z_j - c_j) / R_kk``, always inside ``[lo, hi]`` (the zig-zag stops at a
    box edge and continues on the other side). The partial sums ``sig[k, j] = sum_{l >= j} R_kl
    (z_l - c_l)`` are kept between visits and only the entries made stale since (levels up to
    ``max(stale[k], rs[k + 1])``) are recomputed (Ghasemmehdi & Agrell's faster recursion).

    Resumable: ``ctl = [level, started, done, nodes]``; ``sig`` (n, n + 1) zeros and ``stale``/``rs``
    (n,) int64 set to ``n - 1`` before the first call. At most ``max_nodes`` candidates are scored per
    call; at return ``z[ctl[0]]`` is a candidate not yet scored.
    """
    n = R.shape[0]
    if ctl[1] == 0:
        ctl[1] = 1
        dist[n] = 0.0
        k = n - 1
        ck = c[k]
        center[k] = ck
        z0 = min(max(np.floor(ck + 0.5), lo), hi)
        z[k] = z0
        up[k] = z0 + 1.0
        dn[k] = z0 - 1.0
        ctl[0] = k
    k = ctl[0]
    bd = best_d[0]
    evals = 0
    while evals < max_nodes:
        evals += 1
        t = R[k, k] * (z[k] - center[k])
        d = dist[k + 1] + t * t
        if d < bd and k > 0:
            # descend to level k - 1: refresh its stale partial sums, centre, nearest in-box value
            dist[k] = d
            k -= 1
            s = stale[k]
            if rs[k + 1] > s:
                s = rs[k + 1]
            acc = sig[k, s + 1]
            for j in range(s, k, -1):
                acc += R[k, j] * (z[j] - c[j])
                sig[k, j] = acc
            rs[k] = s
            stale[k] = k
            ck = c[k] - sig[k, k + 1] / R[k, k]
            center[k] = ck
            z0 = min(max(np.floor(ck + 0.5), lo), hi)
            z[k] = z0
            up[k] = z0 + 1.0
            dn[k] = z0 - 1.0
            if k > 0 and stale[k - 1] < k:
                stale[k - 1] = k
            continue
        if d < bd:
            # a better point (level 0): shrink the radius
            bd = d
            best_d[0] = d
            best_z[:] = z
        # this level is done (values come in increasing distance): climb to the next candidate
        k += 1
        while k < n:
            cu = up[k]
            cd = dn[k]
            ck = center[k]
            u_ok = cu <= hi
            d_ok = cd >= lo
            if u_ok and (not d_ok or cu - ck <= ck - cd):
                z[k] = cu
                up[k] = cu + 1.0
            elif d_ok:
                z[k] = cd
                dn[k] = cd - 1.0
            else:
                k += 1
                continue
            if stale[k - 1] < k:
                stale[k - 1] = k
            break
        if k >= n:
            ctl[2] = 1
            break
    ctl[0] = k
    ctl[3] += evals


def se_open_bound(R, z, center, dist, up, dn, lo, hi, ctl, best: float) -> float:
    """Lower bound of a stopped enumeration: the least partial distance of the pending candidate at the
    current level and of the next candidate at every level above (all unexplored subtrees lie below)."""
    n = R.shape[0]
    if ctl[2]:
        return best
    k = int(ctl[0])
    t = R[k, k] * (z[k] - center[k])
    lb = min(best, dist[k + 1] + t * t)
    for j in range(k + 1, n):
        cands = [v for v in (up[j], dn[j]) if lo <= v <= hi]
        if cands:
            v = min(cands, key=lambda x: abs(x - center[j]))
            t = R[j, j] * (v - center[j])
            lb = min(lb, dist[j + 1] + t * t)
    return float(lb)
