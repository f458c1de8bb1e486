"""Swap local search for pruning: starting from a support, exchange one kept and one pruned weight while
that lowers the refitted output error (best improvement first)."""

from __future__ import annotations

import time

import numpy as np

from pvq.layerwise._linalg import refit
from pvq.layerwise._prune_kernels import swap_search
from pvq.layerwise._prune_magnitude import magnitude_mask
from pvq.layerwise._prune_obs import prune_obs
from pvq.layerwise._result import SolveResult, row_error

__all__ = ["prune_swap", "improve_support"]


def improve_support(G: np.ndarray, w0: np.ndarray, keep: np.ndarray, max_passes: int = 1000) -> np.ndarray:
    """1-swap local search from ``keep`` (bool (n,)); returns the improved support (a new array)."""
    G = np.ascontiguousarray(G, dtype=np.float64)
    w0 = np.asarray(w0, dtype=np.float64)
    keep = np.array(keep, dtype=np.bool_)
    try:
        swap_search(G, G @ w0, keep, max_passes)
    except Exception:  # singular G_SS: keep what we have (the refit uses a pseudo-inverse)
        pass
    return keep


def prune_swap(G: np.ndarray, w0: np.ndarray, k: int) -> SolveResult:
    """Best of magnitude and OBS supports, each improved by 1-swap local search, then refitted."""
    t0 = time.perf_counter()
    w0 = np.asarray(w0, dtype=np.float64)
    best_w, best_v = None, np.inf
    for start in (magnitude_mask(w0, k), prune_obs(G, w0, k).solution != 0.0):
        if start.sum() != k:  # OBS may leave exact zeros in w0: pad with the largest magnitudes
            start = start | magnitude_mask(np.where(start, np.inf, w0), k)
        keep = improve_support(G, w0, start)
        w = refit(G, w0, keep)
        v = row_error(G, w0, w)
        if v < best_v:
            best_w, best_v = w, v
    return SolveResult(best_v, np.nan, np.nan, time.perf_counter() - t0, "heuristic", best_w)
