"""OBS / SparseGPT-style greedy pruning: remove the weight whose removal raises the output error least,
re-solve the rest exactly (Hassibi & Stork's update), repeat until ``k`` weights remain."""

from __future__ import annotations

import time

import numpy as np

from pvq.layerwise._linalg import refit, safe_inverse
from pvq.layerwise._prune_kernels import obs_greedy
from pvq.layerwise._result import SolveResult, row_error

__all__ = ["prune_obs"]


def prune_obs(G: np.ndarray, w0: np.ndarray, k: int) -> SolveResult:
    """Greedy OBS backward elimination to ``k`` non-zeros, then a least-squares refit on the support."""
    t0 = time.perf_counter()
    w0 = np.asarray(w0, dtype=np.float64)
    n = w0.shape[0]
    Hinv, ridge = safe_inverse(G)
    w, _ = obs_greedy(w0, Hinv, n - min(k, n))
    w = refit(G, w0, w != 0.0) if k > 0 else w
    notes = (f"ridge {ridge:.3g} added to G for its inverse",) if ridge else ()
    return SolveResult(
        row_error(G, w0, w), np.nan, np.nan, time.perf_counter() - t0, "heuristic", w, notes=notes
    )
