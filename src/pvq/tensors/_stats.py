"""Per-tensor statistics: Pearson kurtosis (normal = 3), as the paper defines it (Sec. 3.4)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["kurtosis", "excess_to_pearson"]


def kurtosis(w: np.ndarray, chunk: int = 1 << 20) -> float:
    """Sample kurtosis ``k = mean((x - xbar)^4) / mean((x - xbar)^2)^2`` (Pearson; normal = 3).

    Equals ``scipy.stats.kurtosis(w, fisher=False, bias=True)``. ``nan`` for constant or empty
    tensors (undefined: zero variance), as scipy returns. Accumulates in float64 over ``chunk`` values
    at a time, so a float32 tensor needs no full-size float64 copy.
    """
    x = np.asarray(w).reshape(-1)
    n = x.size
    if n == 0:
        return math.nan
    mean = sum(float(x[a : a + chunk].sum(dtype=np.float64)) for a in range(0, n, chunk)) / n
    m2 = m4 = 0.0
    for a in range(0, n, chunk):
        sq = x[a : a + chunk].astype(np.float64) - mean
        np.multiply(sq, sq, out=sq)  # squared deviations, in place
        m2 += float(sq.sum())
        m4 += float(np.dot(sq, sq))
    m2 /= n
    m4 /= n
    if m2 <= (np.finfo(np.float64).resolution * abs(mean)) ** 2 or m2 == 0.0:
        return math.nan
    return m4 / (m2 * m2)


def excess_to_pearson(k_excess: float) -> float:
    """Excess kurtosis (scipy's default, Fisher: normal = 0) to Pearson kurtosis (normal = 3)."""
    return float(k_excess) + 3.0
