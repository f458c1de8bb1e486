"""Compiled (numba) hot loops of the quantization solvers: 1-opt and box-constrained sphere decoding.

Integer units throughout: ``c = w0 / scale`` (n,) is the real target, ``z`` (n,) integers in
``[lo, hi]``, and the objective ``(z - c)^T G (z - c)`` (times ``scale^2`` for the output error, eq. 4).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from pvq.layerwise._obs_kernels import drop_coordinate

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
def _fix_lb(k, z, CH, V, Dk, P1, lo, hi, room):  # pragma: no cover - compiled
    """Fix ``z_k``: set ``CH[k, :k]`` (continuous minimiser of the levels below ``k``) and test whether
    two lower bounds on their cost stay below ``room``, with ``e_i`` the distance from ``CH[k, i]`` to
    the nearest in-box integer: ``sum_i Dk[k, i] e_i^2`` (from ``Q_k >= diag(Dk[k])``) and
    ``max_i P1[k, i] e_i^2`` (``P1[k, i] = 1 / (Q_k^-1)_ii``: the cost of moving ``y_i`` alone by
    ``e_i``). Stops at the first bound that reaches ``room`` (then ``CH[k, :k]`` may be incomplete, and
    the search does not descend)."""
    dz = z[k] - CH[k + 1, k]
    t = 0.0
    for i in range(k):
        x = CH[k + 1, i] + dz * V[k, i]
        CH[k, i] = x
        if x <= lo:
            e = lo - x
        elif x >= hi:
            e = x - hi
        else:
            e = x - np.floor(x + 0.5)
        e2 = e * e
        t += Dk[k, i] * e2
        if t >= room or e2 * P1[k, i] >= room:
            return False
    return True


@njit(cache=True)
def se_run(
    R, c, lo, hi, best_z, best_d, z, center, dist, up, dn, ctl, max_nodes, sig, stale, rs, CH, V, Dk, P1
):  # pragma: no cover
    """Schnorr-Euchner depth-first enumeration of ``||R (z - c)||^2 < best_d[0]`` over the integer box.

    ``R`` (n, n) upper triangular (``G = R^T R`` in the search order); level ``n - 1`` is decided
    first; at each level the values come in order of distance from the conditional centre
    ``c_k - sum_{j>k} R_kj (z_j - c_j) / R_kk``, always inside ``[lo, hi]`` (the zig-zag stops at a
    box edge and continues on the other side). The partial sums ``sig[k, j] = sum_{l >= j} R_kl
    (z_l - c_l)`` are kept between visits and only the entries made stale since (levels up to
    ``max(stale[k], rs[k + 1])``) are recomputed (Ghasemmehdi & Agrell's faster recursion).

    Pruning: a candidate is dropped when its partial distance plus a lower bound on the levels below
    reaches the radius. The bound: with ``Q_k = G[:k, :k] >= diag(Dk[k])`` and ``CH[k]`` the continuous
    minimiser of the free levels, their cost is at least ``sum_i Dk[k, i] (CH[k, i] - nearest in-box
    integer)^2``, and also at least ``max_i (CH[k, i] - nearest in-box integer)^2 / (Q_k^-1)_ii`` (see
    :func:`_fix_lb`). ``CH[n] = c``; ``V[k, :k] = -Q_k^-1 G[:k, k]`` moves it when ``z_k`` is fixed.

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
        if d < bd:
            if k > 0:
                if _fix_lb(k, z, CH, V, Dk, P1, lo, hi, bd - d):
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
                # bound cut: try the next value at this level (farther values may have smaller bounds)
            else:
                # a better point (level 0): shrink the radius; the other values here are farther
                bd = d
                best_d[0] = d
                best_z[:] = z
                k = 1
        else:
            # values come in increasing distance: this level is done
            k += 1
        # next candidate at level k, climbing while levels are exhausted
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


@njit(cache=True)
def _lambda_max_upper(M):  # pragma: no cover - compiled
    """A certified upper bound on ``lambda_max(M)`` (M symmetric PSD): a power-iteration estimate, raised
    until ``lam I - M`` has a Cholesky factor (which proves ``lam >= lambda_max``)."""
    k = M.shape[0]
    v = np.ones(k) / np.sqrt(k)
    est = 0.0
    for _ in range(30):
        u = M @ v
        nu = np.sqrt(u @ u)
        if nu == 0.0:
            return 0.0
        est = nu
        v = u / nu
    lam = est * 1.02 + 1e-12
    eye = np.eye(k)
    for _ in range(60):
        try:
            np.linalg.cholesky(lam * eye - M)
            return lam
        except Exception:  # not yet an upper bound
            lam *= 1.1
    return np.inf


@njit(cache=True)
def level_tables(R, c, use_bound):  # pragma: no cover - compiled
    """``(CH, V, Dk, P1)`` for :func:`se_run` from the upper Cholesky factor ``R`` (n, n).

    ``V[k, :k] = -R[:k, :k]^-1 R[:k, k] = R^-1[:k, k] R[k, k]`` (one triangular inverse serves all
    levels); ``Dk[k, :k] = t_k / diag(Q_k^-1)`` with ``Q_k^-1 = R^-1[:k, :k] R^-1[:k, :k]^T`` and
    ``t_k = 1 / lambda_max`` of its Jacobi scaling, so that ``Q_k >= diag(Dk[k])``;
    ``P1[k, :k] = 1 / diag(Q_k^-1)`` (single-coordinate bounds). Both shrunk by ``1e-9`` for rounding.
    """
    n = R.shape[0]
    Ri = np.zeros((n, n))
    for j in range(n):  # back substitution, column by column: R Ri = I
        Ri[j, j] = 1.0 / R[j, j]
        for i in range(j - 1, -1, -1):
            s = 0.0
            for l in range(i + 1, j + 1):
                s += R[i, l] * Ri[l, j]
            Ri[i, j] = -s / R[i, i]
    V = np.zeros((n, n))
    Dk = np.zeros((n + 1, n))
    CH = np.zeros((n + 1, n))
    P1 = np.zeros((n + 1, n))
    CH[n, :] = c
    for k in range(1, n):
        for i in range(k):
            V[k, i] = Ri[i, k] * R[k, k]
        if use_bound:
            A = np.ascontiguousarray(Ri[:k, :k])
            Qi = A @ A.T
            h = np.empty(k)
            for i in range(k):
                h[i] = Qi[i, i]
            s = 1.0 / np.sqrt(h)
            M = Qi * np.outer(s, s)
            for i in range(k):
                P1[k, i] = (1.0 - 1e-9) / h[i]
            lam = _lambda_max_upper(M)
            if lam > 0:
                for i in range(k):
                    Dk[k, i] = (1.0 - 1e-9) / lam / h[i]
    return CH, V, Dk, P1


@njit(cache=True)
def box_order_kernel(H, c, lo, hi):  # pragma: no cover - compiled
    """Chang & Han's box-aware V-BLAST order from ``H = G^-1`` (modified in place); see ``box_order``."""
    n = H.shape[0]
    cc = c.copy()
    left = np.ones(n, dtype=np.bool_)
    order = np.empty(n, dtype=np.int64)
    zb = np.empty(n)
    for pos in range(n - 1, -1, -1):
        best = -1.0
        j = -1
        zj = 0.0
        for i in range(n):
            if not left[i]:
                continue
            x = cc[i]
            z1 = min(max(np.floor(x + 0.5), lo), hi)
            z2 = z1 + 1.0 if x >= z1 else z1 - 1.0
            if z2 > hi or z2 < lo:
                z2 = z1 - 1.0 if x >= z1 else z1 + 1.0
            cost = abs(z2 - x) / np.sqrt(max(H[i, i], 1e-300))
            if cost > best:
                best = cost
                j = i
                zj = z1
        order[pos] = j
        zb[j] = zj
        left[j] = False
        hjj = max(H[j, j], 1e-300)
        hj = H[:, j].copy()
        dz = (zj - cc[j]) / hjj
        for i in range(n):
            cc[i] += hj[i] * dz
        drop_coordinate(H, j, hj, hjj)
    return order, zb
