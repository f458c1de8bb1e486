"""Swap local search for pruning: starting from a support, exchange one kept and one pruned weight while
that lowers the refitted output error (best improvement first), within an optional deadline."""

from __future__ import annotations

import time

import numpy as np

from pvq.layerwise._linalg import refit
from pvq.layerwise._prune_kernels import swap_scan
from pvq.layerwise._prune_magnitude import magnitude_mask
from pvq.layerwise._prune_obs import prune_obs
from pvq.layerwise._result import SolveResult, row_error

__all__ = ["prune_swap", "improve_support"]

# flops of scoring between two deadline checks (about 10-20 ms of compiled work)
_SLICE_FLOPS = 2e7


def improve_support(
    G: np.ndarray,
    w0: np.ndarray,
    keep: np.ndarray,
    max_passes: int = 1000,
    deadline: float | None = None,
) -> tuple[np.ndarray, str | None]:
    """1-swap local search from ``keep`` (bool (n,)); returns the improved support (a new array) and why
    it stopped early: ``"time limit"`` (``deadline``, a :func:`time.perf_counter` value, passed),
    ``"singular G_SS"`` (the kept Gram block has no inverse; the support found so far is kept, the
    refit uses a pseudo-inverse) or ``None``."""
    G = np.ascontiguousarray(G, dtype=np.float64)
    w0 = np.asarray(w0, dtype=np.float64)
    keep = np.array(keep, dtype=np.bool_)
    b = G @ w0
    n = G.shape[0]
    for _ in range(max_passes):
        S = np.flatnonzero(keep)
        k = S.shape[0]
        if k == 0 or k == n:
            return keep, None
        try:
            H = np.linalg.inv(G[np.ix_(S, S)])
        except np.linalg.LinAlgError:
            return keep, "singular G_SS"
        bs = b[S]
        u = H @ bs
        E = float(bs @ u)
        best = (1e-12 * abs(E) + 1e-300, -1, -1)
        step = max(1, int(_SLICE_FLOPS / ((n - k + 1) * k * k)))
        for lo in range(0, k, step):
            if deadline is not None and time.perf_counter() > deadline:
                return keep, "time limit"
            found = swap_scan(G, b, keep, S, H, u, E, lo, min(k, lo + step), best[0])
            if found[1] >= 0:
                best = found
        if best[1] < 0:
            return keep, None
        keep[best[1]] = False
        keep[best[2]] = True
    return keep, None


def prune_swap(G: np.ndarray, w0: np.ndarray, k: int, time_limit: float | None = None) -> SolveResult:
    """Best of magnitude and OBS supports, each improved by 1-swap local search, then refitted.

    ``time_limit`` (seconds, ``None``: none) bounds the local search; a search stopped by it keeps the
    best support so far and says so in ``notes``.
    """
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + time_limit
    w0 = np.asarray(w0, dtype=np.float64)
    best_w, best_v = None, np.inf
    notes: list[str] = []
    for start in (magnitude_mask(w0, k), prune_obs(G, w0, k).solution != 0.0):
        if start.sum() != k:  # OBS may leave exact zeros in w0: pad with the largest magnitudes
            start = start | magnitude_mask(np.where(start, np.inf, w0), k)
        keep, stopped = improve_support(G, w0, start, deadline=deadline)
        if stopped is not None and f"swap search stopped: {stopped}" not in notes:
            notes.append(f"swap search stopped: {stopped}")
        w = refit(G, w0, keep)
        v = row_error(G, w0, w)
        if v < best_v:
            best_w, best_v = w, v
    return SolveResult(best_v, np.nan, np.nan, time.perf_counter() - t0, "heuristic", best_w, notes=tuple(notes))
