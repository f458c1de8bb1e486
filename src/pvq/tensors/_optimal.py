"""The MSE-optimal scale of a quantization grid for one tensor, certified by branch and bound.

Each weight is rounded to its nearest level, so the squared error is a sum of per-weight minima
``SSE(s) = sum_i min_k (w_i - s l_k)^2`` (clipping is the outermost level). For a fixed assignment of
weights to levels it is a quadratic in s, ``C - 2 s B + s^2 A`` with ``A = sum l_i^2``,
``B = sum w_i l_i``, ``C = sum w_i^2``; the assignment changes only at breakpoints ``s = w / mu``
(mu: a midpoint between adjacent levels). So SSE(s) is a continuous piecewise quadratic with up to
``n (L - 1)`` pieces, and its minimum over an interval is found exactly by sweeping the interval's
breakpoints in order, updating A and B per crossing (:func:`sweep_interval`).

Bounds (:func:`scale_lower_bound`), for ``s in [lo, hi]``: (1) each weight's error is at least its
squared distance to the union of the level intervals ``{s l_k : lo <= s <= hi}`` (valid on any
interval); (2) on narrow intervals, the weights that keep their level over the whole interval give one
quadratic in s, and each weight that crosses one cell boundary inside it has an error above the two
tangents at its breakpoint; these tents sum to a concave function, which lies above its chord, so
quadratic + chord is minimised in closed form. Both come from the sorted values and their prefix sums.

Search (:func:`optimal_scale`): the best of a geometric set of scales, a local descent from it
(``s = B / A``), an exact sweep of a window around it; then the rest of ``[0, s_top]`` (beyond
``s_top`` every weight rounds to 0) is cut into intervals that grow away from the window. Repeatedly
drop every interval whose bound is not below the best error found, sweep exactly those with few
breakpoints (adjacent ones together), and halve the rest (evaluating SSE at the cut). When nothing is
left the best error is the global minimum, up to floating-point rounding of the prefix sums:
``certified=True``. The per-interval work (bounds, the split point's cell boundaries, searched only
between the parent's, the exact sweeps, the descent) runs in compiled loops
(:mod:`pvq.tensors._optimal_kernels`); the numpy functions here are their readable references. A
node cap (``max_nodes``) stops the search early with ``certified=False``: the result is then only
near-optimal (never worse than the caller's candidates).

Checked against an enumeration of every breakpoint on every conv/linear tensor of 40k-700k weights of
MobileNetV2 and EfficientNet-Lite0 at 2-8 bits (tests/test_tensors_optimal.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pvq.tensors._grids import levels_sse
from pvq.tensors._optimal_kernels import (
    counts_at,
    descend,
    fixed_bounds,
    split_counts,
    sse_from_counts,
    sweep_groups,
)
from pvq.tensors._sorted import SortedTensor

__all__ = [
    "OptimalScale",
    "optimal_scale",
    "sweep_interval",
    "scale_lower_bound",
    "count_events",
    "direct_sse",
]


_GEOM = np.geomspace(1.0 / 256.0, 2.0, 19)  # starting scales, in units of max|w| / max|level|


@dataclass(frozen=True)
class OptimalScale:
    """Result of :func:`optimal_scale`: ``scale``, its squared error sum ``sse`` (float64 from the prefix
    sums), ``certified`` = True when the search proved that no scale has a smaller error (the global
    optimum), and ``nodes``: scale intervals bounded (0 when the whole axis was swept directly)."""

    scale: float
    sse: float
    certified: bool
    nodes: int = 0


def _state(st: SortedTensor, s: float, levels: np.ndarray) -> tuple[float, float, float]:
    """(A, B, SSE) of the assignment at scale s."""
    sse, _, stats = levels_sse(st, np.array([s]), levels)
    a = float((stats.count[0] * levels * levels).sum())
    b = float((stats.s1[0] * levels).sum())
    return a, b, float(sse[0])


def _events(
    st: SortedTensor,
    lo: float,
    hi: float,
    levels: np.ndarray,
    ranges: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Breakpoints where a weight changes level between scales hi and lo (0 <= lo < hi).

    A weight w moves outwards across the cell boundary ``s mu`` (mu: midpoint of levels l_k, l_k+1)
    when s falls below ``w / mu``: for mu > 0 the weights in [lo mu, hi mu) move up from l_k to
    l_k+1, for mu < 0 those in [hi mu, lo mu) move down from l_k+1 to l_k. Returns, per event,
    (scale, change of A = l_to^2 - l_from^2, change of B = w (l_to - l_from)), unsorted.
    ``ranges``: the (start, stop) sorted-index ranges of the crossing weights per non-zero mu, if known.
    """
    mu = 0.5 * (levels[1:] + levels[:-1])
    keep = mu != 0
    mu, l_lo, l_hi = mu[keep], levels[:-1][keep], levels[1:][keep]
    pos = mu > 0
    if ranges is None:
        start = np.where(pos, st.count_below(lo * mu), st.count_below(hi * mu))
        stop = np.where(pos, st.count_below(hi * mu), st.count_below(lo * mu))
    else:
        start, stop = ranges
    size = np.maximum(stop - start, 0)
    total = int(size.sum())
    if total == 0:
        return np.empty(0), np.empty(0), np.empty(0)
    seg = np.repeat(np.arange(mu.size), size)  # which boundary each event belongs to
    offset = np.arange(total) - np.repeat(np.cumsum(size) - size, size)
    w = st.gather(start[seg] + offset)
    l_from = np.where(pos, l_lo, l_hi)[seg]
    l_to = np.where(pos, l_hi, l_lo)[seg]
    return w / mu[seg], l_to * l_to - l_from * l_from, w * (l_to - l_from)


def count_events(
    st: SortedTensor, lo: np.ndarray | float, hi: np.ndarray | float, levels: np.ndarray
) -> np.ndarray:
    """Number of breakpoints inside each scale interval (lo, hi] (the events :func:`_events` returns),
    shape of ``lo``; binary searches only."""
    lo_a, hi_a = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    mid = 0.5 * (levels[1:] + levels[:-1])
    pos, neg = mid[mid > 0][None, :], mid[mid < 0][None, :]
    lo2, hi2 = lo_a.reshape(-1, 1), hi_a.reshape(-1, 1)
    n = np.zeros(lo2.shape[0], dtype=np.int64)
    if pos.size:
        n += (st.count_below(hi2 * pos) - st.count_below(lo2 * pos)).sum(axis=1)
    if neg.size:
        n += (st.count_below(lo2 * neg) - st.count_below(hi2 * neg)).sum(axis=1)
    return n.reshape(lo_a.shape)


def sweep_interval(
    st: SortedTensor,
    lo: float,
    hi: float,
    levels: np.ndarray,
    idx: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, float]:
    """Exact minimum of SSE(s) over ``lo <= s <= hi`` (0 <= lo < hi): returns (scale, sse).

    ``idx``: ``count_below(lo * mu)`` and ``count_below(hi * mu)`` for the L-1 level midpoints, if known.
    Cost: O(E log E) time and O(E) memory for the E breakpoints in the interval (:func:`count_events`).
    """
    levels = np.asarray(levels, dtype=np.float64)
    c = st.energy
    if idx is None:
        a0, b0, _ = _state(st, hi, levels)
        s_ev, da, db = _events(st, lo, hi, levels)
    else:
        ilo, ihi = idx
        edges = np.concatenate([[0], ihi, [st.n]])
        a0 = float((np.diff(edges) * levels * levels).sum())
        b0 = float((np.diff(st.prefix(edges)[0]) * levels).sum())
        nz = levels[1:] + levels[:-1] != 0
        s_ev, da, db = _events(st, lo, hi, levels, (np.minimum(ilo, ihi)[nz], np.maximum(ilo, ihi)[nz]))
    order = np.argsort(-s_ev, kind="stable")
    s_sorted = s_ev[order]
    a = a0 + np.concatenate(([0.0], np.cumsum(da[order])))
    b = b0 + np.concatenate(([0.0], np.cumsum(db[order])))
    upper = np.concatenate(([hi], s_sorted))  # piece j covers [lower_j, upper_j]
    lower = np.concatenate((s_sorted, [lo]))
    with np.errstate(divide="ignore", invalid="ignore"):
        s_star = np.where(a > 0, b / np.where(a > 0, a, 1.0), upper)
    s_star = np.clip(s_star, lower, upper)
    sse = c - 2.0 * s_star * b + s_star * s_star * a
    j = int(np.argmin(sse))
    return float(s_star[j]), float(max(sse[j], 0.0))


def _union_bound(st: SortedTensor, lo: np.ndarray, hi: np.ndarray, lv: np.ndarray) -> np.ndarray:
    """Bound 1 (any interval): each weight's squared distance to the union of the level intervals."""
    nonneg = lv >= 0
    a = np.where(nonneg, lo * lv, hi * lv)  # (C, L) left ends of the I_k
    b = np.where(nonneg, hi * lv, lo * lv)  # right ends
    m = 0.5 * (b[:, :-1] + a[:, 1:])  # gap midpoints (inside the overlap when I_k, I_k+1 overlap)
    at = a.copy()
    at[:, 1:] = np.maximum(a[:, 1:], m)
    bt = b.copy()
    bt[:, :-1] = np.minimum(b[:, :-1], m)
    c, nl = lo.shape[0], lv.shape[1]
    bounds = np.empty((c, 3 * nl - 1))
    bounds[:, 0::3], bounds[:, 1::3], bounds[:, 2::3] = at, bt, m
    stats = st.cells(bounds)  # (C, 3 L): below at_0, [at_k, bt_k), [bt_k, m_k), [m_k, at_k+1), ...
    ref = np.zeros((c, 3 * nl))
    ref[:, 0::3], ref[:, 2::3] = a, b  # cells 3k: nearest point a_k; cells 3k+2: b_k; 3k+1: inside
    terms = stats.s2 - 2.0 * ref * stats.s1 + ref * ref * stats.count
    terms[:, 1::3] = 0.0
    return np.maximum(terms.sum(axis=1), 0.0)


def _fixed_bound(
    st: SortedTensor, lo: np.ndarray, hi: np.ndarray, ilo: np.ndarray, ihi: np.ndarray, lv: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bound 2 (tight on narrow intervals), from the sorted positions of the cell boundaries at both ends.

    lo, hi (C, 1); ilo, ihi (C, L-1): ``count_below(lo * mu)``, ``count_below(hi * mu)`` for the level
    midpoints mu. Boundary k's crossing weights are the sorted positions [S_k, E_k) between the two.
    A weight above every crossing range below level k and below every one from k on keeps level k over
    the whole interval: these weights give one quadratic in s. A weight that crosses only boundary k
    contributes its tent (below); weights that may cross several boundaries contribute 0. The bound is
    the minimum over [lo, hi] of the quadratic plus the chord of the tents. Returns (bound (C,), S, E).
    """
    n = st.n
    s_idx = np.minimum(ilo, ihi)  # (C, K) start of each crossing range (non-decreasing in k)
    e_idx = np.maximum(ilo, ihi)
    reach = np.maximum.accumulate(e_idx, axis=1)  # furthest crossing position at or below boundary k
    c = lo.shape[0]
    start = np.concatenate([np.zeros((c, 1), dtype=reach.dtype), reach], axis=1)  # (C, L) sure cells
    stop = np.concatenate([s_idx, np.full((c, 1), n, dtype=reach.dtype)], axis=1)
    stop = np.maximum(stop, start)
    lvl = lv[0]
    big_a = ((stop - start) * (lvl * lvl)).sum(axis=1)
    p1_stop, p2_stop = st.prefix(stop)
    p1_start, p2_start = st.prefix(start)
    big_b = ((p1_stop - p1_start) * lvl).sum(axis=1)
    big_c = (p2_stop - p2_start).sum(axis=1)
    # A crossing weight (one that crosses only boundary k, at t = w / mu) has the error of its outer
    # level for s < t and of its inner level for s > t: a peak P = (t h / 2)^2 (h: level spacing) between
    # two convex branches, so it lies above the two tangents at t (a tent, concave in s). Their sum T(s)
    # is concave, hence above its chord through T(lo) and T(hi); T(lo), T(hi) are sums of w and w^2.
    prev = np.concatenate([np.zeros((c, 1), dtype=reach.dtype), reach[:, :-1]], axis=1)
    nxt = np.concatenate([s_idx[:, 1:], np.full((c, 1), n, dtype=reach.dtype)], axis=1)
    clean = (s_idx >= prev) & (e_idx <= nxt) & (e_idx > s_idx)
    a_idx, b_idx = np.where(clean, s_idx, 0), np.where(clean, e_idx, 0)
    mu = 0.5 * (lv[:, 1:] + lv[:, :-1])  # (1, K)
    inv = np.where(mu != 0, 1.0 / np.where(mu != 0, mu, 1.0), 0.0)
    p1_b, p2_b = st.prefix(b_idx)
    p1_a, p2_a = st.prefix(a_idx)
    sum_t = (p1_b - p1_a) * inv  # sum of t = w / mu over the crossing weights
    sum_t2 = (p2_b - p2_a) * inv * inv
    h = lv[:, 1:] - lv[:, :-1]
    out_l = np.abs(np.where(mu > 0, lv[:, 1:], lv[:, :-1]))  # level below the breakpoint (s < t)
    in_l = np.abs(np.where(mu > 0, lv[:, :-1], lv[:, 1:]))
    t_lo = ((0.25 * h * h - out_l * h) * sum_t2 + out_l * h * lo * sum_t).sum(axis=1)
    t_hi = ((0.25 * h * h + in_l * h) * sum_t2 - in_l * h * hi * sum_t).sum(axis=1)
    lo1, hi1 = lo[:, 0], hi[:, 0]
    width = np.where(hi1 > lo1, hi1 - lo1, 1.0)
    beta = (t_hi - t_lo) / width  # chord: T(lo) + beta (s - lo)
    alpha = t_lo - beta * lo1
    # minimise C + alpha - s (2 B - beta) + s^2 A over [lo, hi]
    s = np.clip(
        np.where(big_a > 0, (2.0 * big_b - beta) / np.where(big_a > 0, 2.0 * big_a, 1.0), hi1), lo1, hi1
    )
    total = big_c + alpha - s * (2.0 * big_b - beta) + s * s * big_a
    return np.maximum(total, 0.0), s_idx, e_idx


def scale_lower_bound(st: SortedTensor, lo: np.ndarray, hi: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """A lower bound on ``min_{lo <= s <= hi} SSE(s)`` for each interval: lo, hi (C,), 0 <= lo <= hi.

    The larger of two bounds. (1) Level k covers ``I_k = [lo l_k, hi l_k]`` (ends swapped for l_k < 0)
    as s ranges over the interval; a weight's error is at least its squared distance to the union of
    the I_k (3 L cells: below I_0, inside each I_k, each gap between I_k and I_k+1 halved at its
    midpoint). (2) The weights whose level is the same over the whole interval contribute one quadratic
    in s; those that cross one cell boundary inside it, the chord of their tangent tents; the sum is
    minimised exactly (far tighter on narrow intervals, see :func:`_fixed_bound`). Returns (C,) float64.
    """
    lo = np.asarray(lo, dtype=np.float64).reshape(-1, 1)
    hi = np.asarray(hi, dtype=np.float64).reshape(-1, 1)
    lv = np.asarray(levels, dtype=np.float64)[None, :]
    mu = 0.5 * (lv[:, 1:] + lv[:, :-1])
    b2, _, _ = _fixed_bound(st, lo, hi, st.count_below(lo * mu), st.count_below(hi * mu), lv)
    return np.maximum(b2, _union_bound(st, lo, hi, lv))


def _descend(st: SortedTensor, s: float, levels: np.ndarray, steps: int = 8) -> tuple[float, float]:
    """Local descent from s: the best scale of the current assignment, ``s = B / A``, while it helps."""
    return descend(st.values, st.p1b, st.p2b, st.block, st.energy, s, levels, steps)


def _merge_runs(lo: np.ndarray, hi: np.ndarray, ev: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Group intervals sorted by ``lo`` into runs of adjacent ones (``hi`` of one = ``lo`` of the next)
    holding at most ``budget`` breakpoints together: (first, last) positions of each run."""
    first, last = [0], []
    total = int(ev[0])
    for j in range(1, lo.size):
        if hi[j - 1] == lo[j] and total + int(ev[j]) <= budget:
            total += int(ev[j])
        else:
            last.append(j - 1)
            first.append(j)
            total = int(ev[j])
    last.append(lo.size - 1)
    return np.array(first), np.array(last)


def optimal_scale(
    st: SortedTensor,
    levels: np.ndarray,
    extra_candidates: np.ndarray | None = None,
    full_budget: int = 20_000,
    window_budget: int = 10_000,
    sweep_budget: int = 250,
    merge_budget: int = 2_000,
    ratio: float = 1.25,
    max_nodes: int = 200_000,
) -> OptimalScale:
    """The scale minimising the squared error of rounding to ``scale * levels`` (levels ascending).

    Tensors with at most ``full_budget`` breakpoints are swept whole. Otherwise: the best of a geometric
    set of scales, a local descent from it, an exact sweep of the window around it that holds up to
    ``window_budget`` breakpoints; then the rest of the axis, cut into intervals that grow by ``ratio``
    away from the window, is branched and bounded (intervals of at most ``sweep_budget`` breakpoints
    are swept, larger ones halved) until no interval can beat the best: ``certified=True``. Stopping at
    ``max_nodes`` bounded intervals gives ``certified=False`` (near-optimal; then ``extra_candidates``,
    e.g. the published grid, are also tried, so the result is never worse than theirs).
    All-zero tensors give ``scale=0, sse=0``.
    """
    levels = np.asarray(levels, dtype=np.float64)
    m = st.max_abs
    if m == 0.0:
        return OptimalScale(0.0, 0.0, True)
    lv = levels[None, :]
    mu = 0.5 * (levels[1:] + levels[:-1])
    nz = mu != 0
    s_top = 2.0 * m / float(np.abs(mu[nz]).min())  # beyond the last breakpoint nothing changes
    arrays = (st.values, st.p1b, st.p2b, st.block)

    def counts(s: np.ndarray) -> np.ndarray:
        return counts_at(st.values, np.asarray(s, dtype=np.float64), mu)

    def events(c0: np.ndarray, c1: np.ndarray) -> int:
        return int(np.abs(c1 - c0)[..., nz].sum())

    def sweep(lo_hi: np.ndarray, ends: np.ndarray, best_s: float, best: float) -> tuple[float, float]:
        """Exact sweep of [s0, s1] given counts ``ends`` (2, K) at s0 and s1, improving (best_s, best)."""
        return sweep_groups(
            *arrays,
            st.energy,
            np.array([lo_hi[0]]),
            np.array([lo_hi[1]]),
            ends[:1],
            ends[1:],
            levels,
            np.zeros(1, dtype=np.int64),
            np.full(1, -np.inf),
            best_s,
            best,
        )

    lo_hi = np.array([0.0, s_top])
    ends = counts(lo_hi)
    if events(ends[0], ends[1]) <= full_budget:  # small tensor: sweep the whole axis
        s, e = sweep(lo_hi, ends, 0.0, np.inf)
        return OptimalScale(s, e, True)
    cands = (m / float(np.abs(levels).max())) * _GEOM
    sse = sse_from_counts(*arrays, cands, counts(cands), levels)
    i = int(np.argmin(sse))
    best_s, best = _descend(st, float(cands[i]), levels)
    # exact sweep of a window around the incumbent
    eps = 2e-2
    while True:
        lo_hi = np.array([best_s / (1 + eps), best_s * (1 + eps)])
        ends = counts(lo_hi)
        ev_w = events(ends[0], ends[1])
        if eps <= 1e-12 or ev_w <= window_budget:
            break
        eps *= max(0.9 * window_budget / ev_w, 0.01)  # events grow about linearly with the width
    w_lo, w_hi = float(lo_hi[0]), float(lo_hi[1])
    best_s, best = sweep(lo_hi, ends, best_s, best)
    # the rest of [0, s_top]: intervals whose width grows with their distance from the window
    steps = eps * np.cumprod(np.full(400, ratio))
    up = w_hi * (1.0 + steps)
    up = np.concatenate([[w_hi], up[up < s_top], [s_top]])
    down = (w_lo * (1.0 - steps[steps < 1.0]))[::-1]
    edges = np.unique(np.concatenate([[0.0], down[down > 0], [w_lo], up]))
    idx = counts(edges)  # (N + 1, L - 1)
    sel = ~((edges[:-1] == w_lo) & (edges[1:] == w_hi))  # the window is done
    lo, hi = edges[:-1][sel], edges[1:][sel]
    ilo, ihi = idx[:-1][sel], idx[1:][sel]
    wide_at = 0.25  # intervals wider than this (relative) also try bound 1 (rarely decisive, not cheap)
    nodes = 0
    certified = True
    while lo.size:
        if nodes + lo.size > max_nodes:
            certified = False
            break
        nodes += lo.size
        lb, ev = fixed_bounds(*arrays, lo, hi, ilo, ihi, levels)
        wide = (lb < best) & (hi - lo > lo * wide_at)
        if wide.any():
            lb[wide] = np.maximum(lb[wide], _union_bound(st, lo[wide, None], hi[wide, None], lv))
        live = lb < best
        if not live.any():
            break
        lo, hi, lb, ilo, ihi, ev = lo[live], hi[live], lb[live], ilo[live], ihi[live], ev[live]
        small = ev <= sweep_budget
        # sweep the small intervals, adjacent ones together (up to merge_budget breakpoints per sweep)
        js = np.flatnonzero(small)
        if js.size:
            js = js[np.argsort(lo[js], kind="stable")]
            first, last = _merge_runs(lo[js], hi[js], ev[js], merge_budget)
            floor = np.minimum.reduceat(lb[js], first)
            g_a, g_b = js[first], js[last]
            order = np.argsort(floor, kind="stable")  # most promising first: the incumbent drops sooner
            best_s, best = sweep_groups(
                *arrays, st.energy, lo[g_a], hi[g_b], ilo[g_a], ihi[g_b], levels, order, floor, best_s, best
            )
        big = ~small
        lo, hi, ilo, ihi = lo[big], hi[big], ilo[big], ihi[big]
        mid = 0.5 * (lo + hi)
        imid = split_counts(st.values, mid, mu, ilo, ihi)
        if mid.size:
            e_mid = sse_from_counts(*arrays, mid, imid, levels)
            k = int(np.argmin(e_mid))
            if e_mid[k] < best:
                best_s, best = _descend(st, float(mid[k]), levels)
        lo, hi = np.concatenate([lo, mid]), np.concatenate([mid, hi])
        ilo, ihi = np.concatenate([ilo, imid]), np.concatenate([imid, ihi])
    if not certified and extra_candidates is not None:
        ex = np.asarray(extra_candidates, dtype=np.float64).reshape(-1)
        ex = ex[ex > 0]
        if ex.size:
            e_ex = levels_sse(st, ex, levels)[0]
            k = int(np.argmin(e_ex))
            if e_ex[k] < best:
                best_s, best = float(ex[k]), float(e_ex[k])
    return OptimalScale(best_s, best, certified, nodes)


def direct_sse(w: np.ndarray, scale: float, levels: np.ndarray) -> tuple[float, int]:
    """Squared error sum and zero count of rounding ``w`` to ``scale * levels`` directly (float64, O(n))."""
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    levels = np.asarray(levels, dtype=np.float64)
    if scale <= 0:
        return float(np.dot(w, w)), int(w.size)
    mid = 0.5 * (levels[1:] + levels[:-1]) * scale
    k = np.searchsorted(mid, w, side="right")  # ties go up, as in the cell evaluators
    q = levels[k] * scale
    err = w - q
    return float(np.dot(err, err)), int(np.count_nonzero(q == 0.0))
