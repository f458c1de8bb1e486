"""Compiled (numba) hot loops of the quantization solvers: 1-opt and box-constrained sphere decoding.

Integer units throughout: ``c = w0 / scale`` (n,) is the real target, ``z`` (n,) integers in
``[lo, hi]``, and the objective ``(z - c)^T G (z - c)`` (times ``scale^2`` for the output error, eq. 4).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from pvq.layerwise._lattice import lll_reduce
from pvq.layerwise._obs_kernels import drop_coordinate

POWER_ITERS = 8  # per level, warm-started from the level before
MAXTRACE_RANK = 8  # columns of the mixing method's factor
MAXTRACE_SWEEPS = 100  # per level, warm-started from the level before
MAXTRACE_POWER = 30  # power iterations certifying the max-trace diagonal
ORACLE_DEPTH = 64  # deep insertions into the oracle's LLL basis, at any of the first 64 positions (all)

__all__ = ["one_opt", "se_run", "se_drive", "se_open_bound", "level_tables", "box_order_kernel"]


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


LB_BLOCK = 16  # _fix_lb tests its bounds against the room once per block of levels


@njit(cache=True, fastmath={"reassoc", "contract"})
def _fix_lb(k, z, CH, V, Dk, P1, lo, hi, room):  # pragma: no cover - compiled
    """Fix ``z_k``: set ``CH[k, :k]`` (continuous minimiser of the levels below ``k``) and test whether
    two lower bounds on their cost stay below ``room``, with ``e_i`` the distance from ``CH[k, i]`` to
    the nearest in-box integer: ``sum_i Dk[k, i] e_i^2`` (from ``Q_k >= diag(Dk[k])``) and
    ``max_i P1[k, i] e_i^2`` (``P1[k, i] = 1 / (Q_k^-1)_ii``: the cost of moving ``y_i`` alone by
    ``e_i``). Stops after the first block of ``LB_BLOCK`` levels at which a bound reaches ``room`` (then
    ``CH[k, :k]`` may be incomplete, and the search does not descend). Branch-free within a block (the
    nearest in-box integer is the rounded value clamped to the box), so that the compiler vectorises it;
    the sums may be reassociated, a relative change of order ``k * 1e-16``, far inside the ``1e-9``
    margin the tables are shrunk by."""
    dz = z[k] - CH[k + 1, k]
    t = 0.0
    i = 0
    while i < k:
        j = min(i + LB_BLOCK, k)
        mx = 0.0
        for l in range(i, j):
            x = CH[k + 1, l] + dz * V[k, l]
            CH[k, l] = x
            e = x - min(max(np.floor(x + 0.5), lo), hi)
            e2 = e * e
            t += Dk[k, l] * e2
            mx = max(mx, e2 * P1[k, l])
        if t >= room or mx >= room:
            return False
        i = j
    return True


@njit(cache=True)
def _refresh_sums(R, sig, stale, rs, y, c, k):  # pragma: no cover - compiled
    """Entering level ``k`` (Ghasemmehdi & Agrell): recompute only the stale partial sums
    ``sig[k, j] = sum_{l >= j} R[k, l] (y_l - c_l)``, ``j`` from ``max(stale[k], rs[k + 1])`` down to
    ``k + 1``, and mark level ``k`` fresh. Returns the conditional centre of level ``k``."""
    s = stale[k]
    if rs[k + 1] > s:
        s = rs[k + 1]
    acc = sig[k, s + 1]
    for j in range(s, k, -1):
        acc += R[k, j] * (y[j] - c[j])
        sig[k, j] = acc
    rs[k] = s
    stale[k] = k
    return c[k] - sig[k, k + 1] / R[k, k]


@njit(cache=True)
def _inside(x, k, lo, hi):  # pragma: no cover - compiled
    """Whether ``x[:k]`` lies within ``[lo, hi]``."""
    for i in range(k):
        if x[i] < lo or x[i] > hi:
            return False
    return True


@njit(cache=True)
def se_run(
    R, c, lo, hi, best_z, best_d, z, center, dist, up, dn, ctl, max_nodes, sig, stale, rs, CH, V, Dk, P1, orc
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

    Oracle requests: with ``orc = [on, kmin, kmax]`` and ``on``, a node at a level ``kmin <= k <= kmax``
    that passes the bound and whose continuous minimiser ``CH[k, :k]`` lies within half a step of the
    box returns to the caller with ``ctl[4] = 1`` (``dist[k]`` its partial distance), so that the
    box-relaxed subproblem can be solved (:func:`se_drive`); the caller sets ``ctl[4] = 2`` and the
    verdict ``ctl[5]`` (0: descend into the node, 1: drop it) before resuming.

    Resumable: ``ctl = [level, started, done, nodes, request, verdict, oracle nodes]``; ``sig`` (n, n + 1)
    zeros and ``stale``/``rs`` (n,) int64 set to ``n - 1`` before the first call. At most ``max_nodes``
    candidates are scored per call; at return ``z[ctl[0]]`` is a candidate not yet scored (or, with a
    request, the node waiting for its verdict).
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
    resume = ctl[4] == 2
    ctl[4] = 0
    while evals < max_nodes:
        descend = False
        if resume:  # the caller's verdict on the node at level k
            resume = False
            d = dist[k]
            descend = ctl[5] == 0
        else:
            evals += 1
            t = R[k, k] * (z[k] - center[k])
            d = dist[k + 1] + t * t
            if d < bd:
                if k > 0:
                    if _fix_lb(k, z, CH, V, Dk, P1, lo, hi, bd - d):
                        if (
                            orc[0] != 0
                            and orc[1] <= k <= orc[2]
                            and (orc[6] == 2 or _inside(CH[k], k, lo - 0.5, hi + 0.5))
                        ):
                            dist[k] = d
                            ctl[4] = 1
                            break
                        descend = True
                    # else a bound cut: try the next value at this level (farther values may have smaller bounds)
                else:
                    # a better point (level 0): shrink the radius; the other values here are farther
                    bd = d
                    best_d[0] = d
                    best_z[:] = z
                    k = 1
            else:
                # values come in increasing distance: this level is done
                k += 1
        if descend:
            # descend to level k - 1: refresh its stale partial sums, centre, nearest in-box value
            dist[k] = d
            k -= 1
            ck = _refresh_sums(R, sig, stale, rs, z, c, k)
            center[k] = ck
            z0 = min(max(np.floor(ck + 0.5), lo), hi)
            z[k] = z0
            up[k] = z0 + 1.0
            dn[k] = z0 - 1.0
            if k > 0 and stale[k - 1] < k:
                stale[k - 1] = k
            continue
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


@njit(cache=True, error_model="numpy")
def _free_enum(R, c, radius, best, max_nodes):  # pragma: no cover - compiled
    """Schnorr-Euchner enumeration of ``min ||R (y - c)||^2`` over all of ``Z^k`` (no box), below
    ``radius``: ``R`` (k, k) upper triangular, level ``k - 1`` first, each level's values zig-zagging
    out from its conditional centre, the radius shrinking with every better point (written to ``best``).
    Partial sums are refreshed only where stale, as in :func:`se_run`. No level bounds: in a reduced
    basis the plain enumeration is the faster one (measured).

    Returns ``(value, nodes, done)``: the least value found (``radius`` if none), the candidates scored,
    and whether the enumeration finished within ``max_nodes``.
    """
    k = R.shape[0]
    rd = np.empty(k)  # R_jj, contiguous
    for i in range(k):
        rd[i] = R[i, i]
    y = np.empty(k)
    center = np.empty(k)
    inc = np.empty(k)
    dist = np.zeros(k + 1)
    sig = np.zeros((k, k + 1))  # sig[i, j] = sum_{l >= j} R[i, l] (y_l - c_l)
    stale = np.full(k, k - 1, dtype=np.int64)
    rs = np.full(k, k - 1, dtype=np.int64)
    j = k - 1
    center[j] = c[j]
    y[j] = np.floor(c[j] + 0.5)
    inc[j] = 1.0 if c[j] >= y[j] else -1.0
    bd = radius
    nodes = 0
    while nodes < max_nodes:
        nodes += 1
        t = rd[j] * (y[j] - center[j])
        d = dist[j + 1] + t * t
        if d < bd:
            if j > 0:
                dist[j] = d
                j -= 1
                cj = _refresh_sums(R, sig, stale, rs, y, c, j)
                center[j] = cj
                y[j] = np.floor(cj + 0.5)
                inc[j] = 1.0 if cj >= y[j] else -1.0
                if j > 0 and stale[j - 1] < j:
                    stale[j - 1] = j
                continue
            bd = d  # a better point; the other values at level 0 are farther
            best[:] = y
            j = 1
        else:
            j += 1  # values come in increasing distance: this level is done
        if j >= k:
            return bd, nodes, True
        y[j] += inc[j]  # the next value of level j: +1, -2, +3, ... around its centre
        inc[j] = -inc[j] - (1.0 if inc[j] > 0 else -1.0)
        if stale[j - 1] < j:
            stale[j - 1] = j
    return bd, nodes, False


@njit(cache=True, error_model="numpy")
def _box_enum(R, c, A, S2, zc, lo, hi, radius, best, max_nodes):  # pragma: no cover - compiled
    """Schnorr-Euchner enumeration of ``min ||R (y - c)||^2`` over the integer ``y`` (k,) of a reduced
    basis whose original coordinates ``z = T y`` lie in the box ``[lo, hi]^k``, below ``radius``.

    With ``v = R (y - c)`` (``v_j`` the step of level ``j``: ``R_jj (y_j - centre_j)``) the original
    coordinates are ``z = zc + A v``, ``A = T R^-1`` (k, k), ``zc = T c`` the real target. After the
    levels ``j..k-1`` are fixed, ``zh_j = zc + sum_{m >= j} A[:, m] v_m`` and the free ``v_m`` (``m < j``)
    have ``||v_free||^2 <= radius - partial distance = r``, so ``z_i`` lies within
    ``zh_j,i +- sqrt(r S2[j, i])``, ``S2[j, i] = sum_{m < j} A[i, m]^2`` (k + 1, k): a node whose range
    misses the box in some coordinate holds no in-box point and is dropped (the next value at its level
    is tried; farther values may come back into the box). At level 0 the test is the exact box test. The
    radius shrinks only at in-box points (written to ``best``), so the least in-box value below
    ``radius`` is found.

    Returns ``(value, nodes, done)`` as :func:`_free_enum` (``radius`` when no in-box point is below it).
    """
    k = R.shape[0]
    rd = np.empty(k)
    for i in range(k):
        rd[i] = R[i, i]
    y = np.empty(k)
    center = np.empty(k)
    inc = np.empty(k)
    dist = np.zeros(k + 1)
    zh = np.empty((k + 1, k))
    zh[k, :] = zc
    sig = np.zeros((k, k + 1))
    stale = np.full(k, k - 1, dtype=np.int64)
    rs = np.full(k, k - 1, dtype=np.int64)
    j = k - 1
    center[j] = c[j]
    y[j] = np.floor(c[j] + 0.5)
    inc[j] = 1.0 if c[j] >= y[j] else -1.0
    bd = radius
    nodes = 0
    while nodes < max_nodes:
        nodes += 1
        t = rd[j] * (y[j] - center[j])
        d = dist[j + 1] + t * t
        if d < bd:
            r = (bd - d) * (1.0 + 1e-9)  # a margin for rounding: never drop a node that may be in the box
            ok = True
            for i in range(k):
                x = zh[j + 1, i] + t * A[i, j]
                zh[j, i] = x
                if x < lo:
                    e = lo - x
                elif x > hi:
                    e = x - hi
                else:
                    continue
                if e * e > r * S2[j, i] + 1e-12:
                    ok = False
                    break
            if ok:
                if j > 0:
                    dist[j] = d
                    j -= 1
                    cj = _refresh_sums(R, sig, stale, rs, y, c, j)
                    center[j] = cj
                    y[j] = np.floor(cj + 0.5)
                    inc[j] = 1.0 if cj >= y[j] else -1.0
                    if j > 0 and stale[j - 1] < j:
                        stale[j - 1] = j
                    continue
                bd = d  # a better in-box point; the other values at level 0 are farther
                best[:] = y
                j = 1
            # else out of the box: the next value at this level
        else:
            j += 1  # values come in increasing distance: this level is done
        if j >= k:
            return bd, nodes, True
        y[j] += inc[j]
        inc[j] = -inc[j] - (1.0 if inc[j] > 0 else -1.0)
        if j > 0 and stale[j - 1] < j:
            stale[j - 1] = j
    return bd, nodes, False


@njit(cache=True)
def _free_optimum(k, R, ch, room, budget, lat, y, box, lo, hi):  # pragma: no cover - compiled
    """The subproblem of the levels ``0..k-1``: ``min_y (y - ch)^T Q_k (y - ch)`` over ``Z^k``
    (``Q_k = R[:k, :k]^T R[:k, :k]``), enumerated below ``room`` in an LLL-reduced basis of the
    sublattice (with deep insertions; reduced once per level, on first use, into ``lat``): without the
    box (:func:`_free_enum`), or with ``box`` over the in-box points only (:func:`_box_enum`; its tables
    ``A``, ``S2`` are made with the reduction).

    Returns ``(status, value, nodes)``: status 0, nothing below ``room``; 1, the minimiser is in ``y``
    (k,) (search coordinates) with its value; 2, the node budget ran out first.
    """
    RR, TT, TI, ready, AA, SS = lat
    kk = k * k
    if not ready[k]:
        Rr, T, Ti = lll_reduce(np.ascontiguousarray(R[:k, :k]), 0.99, ORACLE_DEPTH)
        RR[k, :kk] = Rr.ravel()
        TT[k, :kk] = T.ravel()
        TI[k, :kk] = Ti.ravel()
        if box:
            # A = T Rr^-1 by back substitution (Rr upper triangular), and the prefix sums of its squares
            Ri = np.zeros((k, k))
            for j in range(k):
                Ri[j, j] = 1.0 / Rr[j, j]
                for i in range(j - 1, -1, -1):
                    acc = 0.0
                    for m in range(i + 1, j + 1):
                        acc += Rr[i, m] * Ri[m, j]
                    Ri[i, j] = -acc / Rr[i, i]
            A = T @ Ri
            AA[k, :kk] = A.ravel()
            S2 = np.zeros((k + 1, k))
            for j in range(k):
                for i in range(k):
                    S2[j + 1, i] = S2[j, i] + A[i, j] * A[i, j]
            SS[k, : (k + 1) * k] = S2.ravel()
        ready[k] = True
    cc = TI[k, :kk].reshape((k, k)) @ ch  # the target in reduced coordinates
    best_y = np.zeros(k)
    if box:
        value, nodes, done = _box_enum(
            RR[k, :kk].reshape((k, k)), cc, AA[k, :kk].reshape((k, k)), SS[k, : (k + 1) * k].reshape((k + 1, k)),
            ch, lo, hi, room, best_y, budget,
        )  # fmt: skip
    else:
        value, nodes, done = _free_enum(RR[k, :kk].reshape((k, k)), cc, room, best_y, budget)
    if not done:
        return 2, room, nodes
    if value >= room:
        return 0, room, nodes
    y[:k] = TT[k, :kk].reshape((k, k)) @ best_y
    return 1, value, nodes


@njit(cache=True, nogil=True)
def se_drive(
    R,
    c,
    lo,
    hi,
    best_z,
    best_d,
    z,
    center,
    dist,
    up,
    dn,
    ctl,
    max_nodes,
    sig,
    stale,
    rs,
    CH,
    V,
    Dk,
    P1,
    orc,
    lat,
):  # pragma: no cover
    """:func:`se_run` with a box-relaxed oracle: at each node it requests (see there), the undecided
    levels are solved without their box by :func:`_free_optimum`. Nothing below the radius there: the
    node is dropped. A minimiser inside the box: it is the node's best completion, so it updates the
    incumbent and the node is dropped. Otherwise (outside the box, or over the oracle's node budget) the
    search descends as usual. The oracle is switched off (``orc[0] = 0``) once it has failed more than
    twice as often as it helped, plus four.

    ``orc = [on, kmin, kmax, oracle node budget per call, helped, failed, mode]``; ``lat``: the per-level
    reduction tables (see ``quant_sphere.lattice_tables``). At most about ``max_nodes`` candidates
    (search and oracle together) per call; ``ctl[6]`` counts the oracle's.
    """
    n = R.shape[0]
    y = np.zeros(n)
    spent = 0
    while spent < max_nodes:
        before = ctl[3]
        se_run(
            R, c, lo, hi, best_z, best_d, z, center, dist, up, dn, ctl, max_nodes - spent, sig, stale, rs, CH,
            V, Dk, P1, orc,
        )  # fmt: skip
        spent += ctl[3] - before
        if ctl[4] != 1:  # done, or out of nodes
            break
        k = ctl[0]
        room = best_d[0] - dist[k]
        box = orc[6] != 0
        status, value, nodes = _free_optimum(
            k, R, CH[k, :k], room * (1.0 + 1e-9), orc[3], lat, y, box, lo, hi
        )
        spent += nodes
        ctl[6] += nodes
        drop = status == 0
        if status == 1 and _inside(y, k, lo, hi):  # the node's best completion
            drop = True
            if dist[k] + value < best_d[0]:
                best_d[0] = dist[k] + value
                best_z[:k] = y[:k]
                best_z[k:] = z[k:]
        if drop:
            orc[4] += 1
        else:
            orc[5] += 1
            if box:
                # box-aware: only the budget fails; the levels from k up are too large for it
                orc[2] = k - 1
                if orc[2] < orc[1]:
                    orc[0] = 0
            elif orc[5] > 2 * orc[4] + 4:
                orc[0] = 0
        ctl[4] = 2
        ctl[5] = 1 if drop else 0


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
def _is_pd(A, W):  # pragma: no cover - compiled
    """Whether the symmetric ``A`` (k, k) is positive definite: an in-place Cholesky in the work array
    ``W`` (at least (k, k)), stopped at the first non-positive pivot."""
    k = A.shape[0]
    for j in range(k):
        s = A[j, j]
        for l in range(j):
            s -= W[j, l] * W[j, l]
        if s <= 0.0:
            return False
        d = np.sqrt(s)
        W[j, j] = d
        for i in range(j + 1, k):
            t = A[i, j]
            for l in range(j):
                t -= W[i, l] * W[j, l]
            W[i, j] = t / d
    return True


@njit(cache=True)
def _power_steps(M, v, steps, est):  # pragma: no cover - compiled
    """``steps`` power iterations on the unit vector ``v`` (in place); returns the largest ``||M v||``
    seen, ``est`` included (each is a lower bound on ``lambda_max``), or 0 when ``M v`` vanishes."""
    for _ in range(steps):
        u = M @ v
        nu = np.sqrt(u @ u)
        if nu == 0.0:
            return 0.0
        est = max(est, nu)
        v[:] = u / nu
    return est


@njit(cache=True)
def _lambda_max_upper(M, v, iters, W):  # pragma: no cover - compiled
    """A certified upper bound on ``lambda_max(M)`` (M (k, k) symmetric PSD): ``iters`` power iterations
    from ``v`` (k,) (a warm start; left holding the last iterate), raised until ``lam I - M`` has a
    Cholesky factor (which proves ``lam >= lambda_max``). ``W``: work array, at least (k, k)."""
    k = M.shape[0]
    nv = np.sqrt(v @ v)
    if nv == 0.0:
        v[:] = 1.0 / np.sqrt(k)
    else:
        v /= nv
    est = _power_steps(M, v, iters, 0.0)
    if est == 0.0:
        return 0.0
    lam = est * 1.02 + 1e-12
    A = -M
    for _ in range(60):
        for i in range(k):
            A[i, i] = lam - M[i, i]
        if _is_pd(A, W):
            return lam
        est = _power_steps(M, v, 4, est)  # not yet an upper bound: a better estimate before the next try
        lam = max(lam * 1.1, est * 1.02 + 1e-12)
    return np.inf


@njit(cache=True)
def _maxtrace_diag(Q, Qi, Vm, sweeps, W):  # pragma: no cover - compiled
    """A large-trace diagonal ``d >= 0`` (k,) with ``Q - diag(d)`` positive semi-definite (``Q`` (k, k) PD,
    ``Qi`` its inverse, ``W`` a (k, k) work array).

    ``max sum(d) s.t. Q >= diag(d), d >= 0`` is the dual of ``min tr(Q X), diag(X) >= 1, X >= 0``; with
    ``X = Vm Vm^T`` (rows of ``Vm`` (k, r), norms >= 1: a warm start, updated in place) ``sweeps`` passes
    of the mixing method (Wang, Chang & Kolter 2017; each row set to its best value given the others,
    ``-g_i / min(||g_i||, Q_ii)``, ``g_i = sum_{j != i} Q_ij v_j``) approach it, and
    ``d_i = max(Q_ii - ||g_i||, 0)`` recovers the dual. Then certified: scaled by ``1 / lam``, ``lam`` a
    certified upper bound on ``lambda_max(D^1/2 Q^-1 D^1/2)`` (:func:`_lambda_max_upper`), so that
    ``Q >= diag(d)``, less a rounding margin. Hand-written (not an SDP solver): it runs once per level of
    a search, in milliseconds.
    """
    k, r = Vm.shape
    QV = Q @ Vm
    g = np.empty(r)
    for _ in range(sweeps):
        for i in range(k):
            ng = 0.0
            for a in range(r):
                g[a] = QV[i, a] - Q[i, i] * Vm[i, a]
                ng += g[a] * g[a]
            ng = np.sqrt(ng)
            if ng == 0.0:
                continue
            nv = min(ng, Q[i, i])  # ||v_i|| >= 1: -g_i / Q_ii where that long, else -g_i / ||g_i||
            for a in range(r):
                delta = -g[a] / nv - Vm[i, a]
                if delta != 0.0:
                    Vm[i, a] += delta
                    for l in range(k):
                        QV[l, a] += Q[l, i] * delta
    d = np.empty(k)
    for i in range(k):
        ng = 0.0
        for a in range(r):
            t = QV[i, a] - Q[i, i] * Vm[i, a]
            ng += t * t
        d[i] = Q[i, i] - np.sqrt(ng)
    # certify (see above): d <- d / lam, lam >= lambda_max(D^1/2 Q^-1 D^1/2)
    sd = np.empty(k)
    for i in range(k):
        sd[i] = np.sqrt(max(d[i], 0.0))
    M = np.empty((k, k))
    for a in range(k):
        for b in range(k):
            M[a, b] = sd[a] * Qi[a, b] * sd[b]
    v = sd.copy()
    lam = _lambda_max_upper(M, v, MAXTRACE_POWER, W)
    if not (lam > 0.0 and lam < np.inf):
        return np.zeros(k)
    alpha = (1.0 - 1e-9) / lam
    for i in range(k):
        d[i] = alpha * sd[i] * sd[i]
    return d


@njit(cache=True)
def level_tables(R, c, use_bound, maxtrace=False):  # pragma: no cover - compiled
    """``(CH, V, Dk, P1)`` for :func:`se_run` from the upper Cholesky factor ``R`` (n, n).

    ``V[k, :k] = -R[:k, :k]^-1 R[:k, k] = R^-1[:k, k] R[k, k]`` (one triangular inverse serves all
    levels); ``Dk[k, :k] = t_k / diag(Q_k^-1)`` with ``Q_k^-1 = R^-1[:k, :k] R^-1[:k, :k]^T`` (built one
    rank-one term per level) and ``t_k = 1 / lambda_max`` of its Jacobi scaling, so that
    ``Q_k >= diag(Dk[k])``; ``P1[k, :k] = 1 / diag(Q_k^-1)`` (single-coordinate bounds). Both shrunk by
    ``1e-9`` for rounding. ``use_bound=False``: both zero (plain sphere decoding).
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
    Qi = np.zeros((n, n))  # Q_k^-1 in Qi[:k, :k]
    vec = np.zeros(n)  # power-iteration warm start, carried from level to level
    Vm = np.zeros((n, MAXTRACE_RANK))  # mixing-method rows, carried from level to level
    Qf = R.T @ R if maxtrace else np.zeros((1, 1))  # Q_k = Qf[:k, :k]
    Vm[0, 0] = 1.0
    W = np.empty((n, n))
    for k in range(1, n):
        for i in range(k):
            V[k, i] = Ri[i, k] * R[k, k]
        if use_bound:
            for a in range(k):
                ra = Ri[a, k - 1]
                for b in range(k):
                    Qi[a, b] += ra * Ri[b, k - 1]
            h = np.empty(k)
            for i in range(k):
                h[i] = Qi[i, i]
                P1[k, i] = (1.0 - 1e-9) / h[i]
            s = 1.0 / np.sqrt(h)
            M = np.empty((k, k))
            for a in range(k):
                for b in range(k):
                    M[a, b] = Qi[a, b] * s[a] * s[b]
            vec[k - 1] = 1.0 / np.sqrt(k)
            v = vec[:k]
            lam = _lambda_max_upper(M, v, POWER_ITERS, W)
            if lam > 0:
                for i in range(k):
                    Dk[k, i] = (1.0 - 1e-9) / lam / h[i]
            if maxtrace and k >= 2:
                Q = np.ascontiguousarray(Qf[:k, :k])
                Vm[k - 1, :] = 0.0
                Vm[k - 1, (k - 1) % Vm.shape[1]] = 1.0  # the new level's row: a unit vector
                d = _maxtrace_diag(Q, np.ascontiguousarray(Qi[:k, :k]), Vm[:k], MAXTRACE_SWEEPS, W)
                if d.sum() > Dk[k, :k].sum():  # the larger trace (both are valid)
                    Dk[k, :k] = d
    return CH, V, Dk, P1


@njit(cache=True)
def box_order_kernel(H, c, lo, hi, interior_vblast):  # pragma: no cover - compiled
    """Chang & Han's box-aware V-BLAST order from ``H = G^-1`` (modified in place); see ``box_order``.
    ``interior_vblast``: a variable whose conditional centre lies inside ``[lo, hi]`` is scored by
    ``R_jj`` alone (V-BLAST), only one outside the box by Chang & Han's criterion."""
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
            f = abs(z2 - x)
            if interior_vblast and lo <= x <= hi:
                f = 1.0
            cost = f / np.sqrt(max(H[i, i], 1e-300))
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
