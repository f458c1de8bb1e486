"""Magnitude pruning + least-squares refit: the paper's pruning heuristic (§4.3).

Keeps the ``k`` LARGEST ``|w0_i|`` (the published MATLAB baseline keeps the smallest by mistake), then
refits the kept weights: ``w = argmin ||X(m ⊙ w) - X w0||^2``.
"""

from __future__ import annotations

import time

import numpy as np

from pvq.layerwise._linalg import refit
from pvq.layerwise._result import SolveResult, row_error

__all__ = ["magnitude_mask", "prune_magnitude"]


def magnitude_mask(w0: np.ndarray, k: int) -> np.ndarray:
    """Bool (n,) mask of the ``k`` largest ``|w0|`` (stable: ties keep the earlier index)."""
    w0 = np.asarray(w0)
    mask = np.zeros(w0.shape[0], dtype=bool)
    if k > 0:
        order = np.argsort(-np.abs(w0), kind="stable")
        mask[order[:k]] = True
    return mask


def prune_magnitude(G: np.ndarray, w0: np.ndarray, k: int) -> SolveResult:
    """Magnitude mask of size ``k`` + least-squares refit. ``G`` (n, n), ``w0`` (n,)."""
    t0 = time.perf_counter()
    w = refit(G, w0, magnitude_mask(w0, k))
    return SolveResult(row_error(G, w0, w), np.nan, np.nan, time.perf_counter() - t0, "heuristic", w)
