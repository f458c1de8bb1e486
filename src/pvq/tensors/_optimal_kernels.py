"""Compiled (numba) inner loops of the optimal-scale branch and bound (:mod:`pvq.tensors._optimal`).

Why compiled: a bounded scale interval costs O(L) arithmetic on L - 1 cell boundaries, but in numpy
each of the ~40 array operations per batch allocates a (C, L) temporary, and locating the boundaries
of a split point by ``np.searchsorted`` searches the whole sorted tensor (log2 n cold reads per
boundary). Here the split point's boundary positions are searched only between the parent's two ends
(a handful of values on a narrow interval), and the bound of one interval is one pass over its L
cells. Same formulas as the numpy reference versions in ``_optimal.py`` (tested against them).

Arrays: ``values`` (n,) float32 ascending; ``p1b``, ``p2b`` prefix sums of values and squares every
``block`` positions (:class:`pvq.tensors.SortedTensor`); index arrays (C, K) int64 hold
``count_below(s * mu_k)`` for the K = L - 1 level midpoints ``mu`` (ascending).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["split_counts", "sse_from_counts", "fixed_bounds", "sweep_groups", "descend", "counts_at"]


@njit(cache=True, inline="always")
def _prefix(values, p1b, p2b, block, i):  # pragma: no cover - compiled
    """(sum, sum of squares) of the first i sorted values, float64."""
    q = i // block
    a = p1b[q]
    b = p2b[q]
    for j in range(q * block, i):
        v = np.float64(values[j])
        a += v
        b += v * v
    return a, b


@njit(cache=True)
def split_counts(values, s, mu, ia, ib):  # pragma: no cover - compiled
    """``count_below(s[c] * mu[k])`` (C, K) for scales s (C,) lying between two scales whose counts are
    ``ia``, ``ib`` (C, K): the answer lies between them, so only that range is searched. Exact (a float32
    value converted to float64 compares with the float64 threshold as the reals do)."""
    c_n, k_n = ia.shape
    out = np.empty((c_n, k_n), dtype=np.int64)
    for c in range(c_n):
        for k in range(k_n):
            t = s[c] * mu[k]
            a = min(ia[c, k], ib[c, k])
            b = max(ia[c, k], ib[c, k])
            while a < b:
                m = (a + b) >> 1
                if np.float64(values[m]) < t:
                    a = m + 1
                else:
                    b = m
            out[c, k] = a
    return out


@njit(cache=True)
def sse_from_counts(values, p1b, p2b, block, s, idx, levels):  # pragma: no cover - compiled
    """Squared error sum (C,) of rounding to ``s[c] * levels`` from ``idx = count_below(s * mu)`` (C, K)."""
    c_n, k_n = idx.shape
    n = values.shape[0]
    out = np.empty(c_n)
    for c in range(c_n):
        tot = 0.0
        prev = 0
        q1, q2 = 0.0, 0.0
        for k in range(k_n + 1):
            e = idx[c, k] if k < k_n else n
            r1, r2 = _prefix(values, p1b, p2b, block, e)
            ctr = s[c] * levels[k]
            tot += (r2 - q2) - 2.0 * ctr * (r1 - q1) + ctr * ctr * (e - prev)
            prev, q1, q2 = e, r1, r2
        out[c] = max(tot, 0.0)
    return out


@njit(cache=True)
def fixed_bounds(values, p1b, p2b, block, lo, hi, ilo, ihi, levels):  # pragma: no cover - compiled
    """Bound 2 of ``_optimal._fixed_bound`` for C intervals [lo, hi] (C,) with boundary counts ilo, ihi
    (C, K): returns (bound (C,), breakpoints inside each interval (C,) int64).

    Weights sure to keep their level give one quadratic in s; a weight crossing only boundary k lies
    above the tangents at its breakpoint (a concave tent), and the sum of the tents above its chord;
    quadratic + chord is minimised over [lo, hi] in closed form."""
    c_n, k_n = ilo.shape
    n = values.shape[0]
    bound = np.empty(c_n)
    events = np.empty(c_n, dtype=np.int64)
    for c in range(c_n):
        big_a = 0.0
        big_b = 0.0
        big_c = 0.0
        t_lo = 0.0
        t_hi = 0.0
        ev = 0
        reach = 0  # furthest crossing position at or below the boundaries seen so far
        pr1 = 0.0  # prefix sums at reach
        pr2 = 0.0
        for k in range(k_n + 1):
            if k < k_n:
                sk = min(ilo[c, k], ihi[c, k])
                ek = max(ilo[c, k], ihi[c, k])
            else:
                sk = n
                ek = n
            s1, s2 = _prefix(values, p1b, p2b, block, sk)
            if sk > reach:  # weights sure to stay at level k: [reach, sk)
                lk = levels[k]
                big_a += (sk - reach) * lk * lk
                big_b += (s1 - pr1) * lk
                big_c += s2 - pr2
            if k == k_n:
                break
            ev += ek - sk
            if ek > sk:
                e1, e2 = _prefix(values, p1b, p2b, block, ek)
            else:
                e1, e2 = s1, s2
            nxt = n if k + 1 == k_n else min(ilo[c, k + 1], ihi[c, k + 1])
            mu = 0.5 * (levels[k] + levels[k + 1])
            if ek > sk and sk >= reach and ek <= nxt and mu != 0.0:  # weights crossing only boundary k
                inv = 1.0 / mu
                sum_t = (e1 - s1) * inv
                sum_t2 = (e2 - s2) * inv * inv
                h = levels[k + 1] - levels[k]
                if mu > 0:
                    out_l, in_l = abs(levels[k + 1]), abs(levels[k])
                else:
                    out_l, in_l = abs(levels[k]), abs(levels[k + 1])
                t_lo += (0.25 * h * h - out_l * h) * sum_t2 + out_l * h * lo[c] * sum_t
                t_hi += (0.25 * h * h + in_l * h) * sum_t2 - in_l * h * hi[c] * sum_t
            if ek > reach:
                reach, pr1, pr2 = ek, e1, e2
        width = hi[c] - lo[c] if hi[c] > lo[c] else 1.0
        beta = (t_hi - t_lo) / width
        alpha = t_lo - beta * lo[c]
        if big_a > 0:
            s = (2.0 * big_b - beta) / (2.0 * big_a)
        else:
            s = hi[c]
        s = min(max(s, lo[c]), hi[c])
        bound[c] = max(big_c + alpha - s * (2.0 * big_b - beta) + s * s * big_a, 0.0)
        events[c] = ev
    return bound, events


@njit(cache=True)
def sweep_groups(values, p1b, p2b, block, energy, lo, hi, ilo, ihi, levels, order, floor, best_s, best):
    """Exact minimum of SSE(s) over each interval [lo[g], hi[g]] (G,) with boundary counts ilo, ihi
    (G, K), visited in ``order`` and skipped when ``floor[g]`` (a lower bound) is not below the best
    error found so far; starts from (best_s, best) and returns the improved pair.

    Every breakpoint inside the interval (a weight changing level) is an event; sorted by scale
    (descending from hi) they cut the interval into pieces on which SSE(s) = C - 2 s B + s^2 A with
    A, B updated per event, each minimised in closed form."""
    k_n = ilo.shape[1]
    n = values.shape[0]
    for gi in range(order.shape[0]):
        g = order[gi]
        if not floor[g] < best:
            continue
        # state (A, B) of the assignment at hi
        a0 = 0.0
        b0 = 0.0
        prev = 0
        q1 = 0.0
        for k in range(k_n + 1):
            e = ihi[g, k] if k < k_n else n
            r1 = _prefix(values, p1b, p2b, block, e)[0]
            a0 += (e - prev) * levels[k] * levels[k]
            b0 += (r1 - q1) * levels[k]
            prev, q1 = e, r1
        total = 0
        for k in range(k_n):
            total += abs(ilo[g, k] - ihi[g, k])
        s_ev = np.empty(total)
        da = np.empty(total)
        db = np.empty(total)
        j = 0
        for k in range(k_n):
            mu = 0.5 * (levels[k] + levels[k + 1])
            if mu == 0.0:
                continue
            if mu > 0:  # weights in [lo mu, hi mu) move up from level k to k + 1 as s falls
                l_from, l_to = levels[k], levels[k + 1]
            else:  # weights in [hi mu, lo mu) move down from k + 1 to k
                l_from, l_to = levels[k + 1], levels[k]
            for i in range(min(ilo[g, k], ihi[g, k]), max(ilo[g, k], ihi[g, k])):
                w = np.float64(values[i])
                s_ev[j] = w / mu
                da[j] = l_to * l_to - l_from * l_from
                db[j] = w * (l_to - l_from)
                j += 1
        idx = np.argsort(-s_ev[:j])  # ties: any order (equal scales, same error)
        a = a0
        b = b0
        upper = hi[g]
        for p in range(j + 1):
            lower = s_ev[idx[p]] if p < j else lo[g]
            s = b / a if a > 0 else upper
            s = min(max(s, lower), upper)
            e_p = energy - 2.0 * s * b + s * s * a
            if e_p < best:
                best, best_s = e_p, s
            if p < j:
                a += da[idx[p]]
                b += db[idx[p]]
                upper = lower
    return best_s, max(best, 0.0)


@njit(cache=True)
def descend(values, p1b, p2b, block, energy, s, levels, steps):  # pragma: no cover - compiled
    """Local descent from scale s: the best scale of the current assignment, ``s = B / A``
    (``A = sum l_i^2``, ``B = sum w_i l_i``), repeated while the error decreases (at most ``steps``
    times). Returns (scale, sse) of the best scale visited, s itself included."""
    k_n = levels.shape[0] - 1
    n = values.shape[0]
    best_s = s
    best = np.inf
    for _ in range(steps + 1):
        a = 0.0
        b = 0.0
        e = energy
        lo = 0
        prev = 0
        q1 = 0.0
        for k in range(k_n + 1):
            if k < k_n:  # count_below(s * mu_k): the thresholds ascend, so search from the last count
                t = s * (0.5 * (levels[k] + levels[k + 1]))
                hi = n
                while lo < hi:
                    m = (lo + hi) >> 1
                    if np.float64(values[m]) < t:
                        lo = m + 1
                    else:
                        hi = m
                stop = lo
            else:
                stop = n
            r1 = _prefix(values, p1b, p2b, block, stop)[0]
            lk = levels[k]
            a += (stop - prev) * lk * lk
            b += (r1 - q1) * lk
            e += s * lk * (s * lk * (stop - prev) - 2.0 * (r1 - q1))  # cell sum of (w - s l)^2 - w^2
            prev, q1 = stop, r1
        e = max(e, 0.0)
        if not e < best:
            break
        best_s, best = s, e
        if not a > 0:
            break
        s_new = b / a
        if not s_new > 0:
            break
        s = s_new
    return best_s, best


@njit(cache=True)
def counts_at(values, s, mu):  # pragma: no cover - compiled
    """``count_below(s[c] * mu[k])`` (C, K) for scales s >= 0 (C,) and ascending midpoints mu (K,): the
    thresholds of one scale ascend, so each search starts from the previous count."""
    n = values.shape[0]
    out = np.empty((s.shape[0], mu.shape[0]), dtype=np.int64)
    for c in range(s.shape[0]):
        a = 0
        for k in range(mu.shape[0]):
            t = s[c] * mu[k]
            b = n
            while a < b:
                m = (a + b) >> 1
                if np.float64(values[m]) < t:
                    a = m + 1
                else:
                    b = m
            out[c, k] = a
    return out
