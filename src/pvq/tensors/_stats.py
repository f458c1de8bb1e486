"""Per-tensor statistics: Pearson kurtosis (normal = 3), as the paper defines it (Sec. 3.4)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["kurtosis", "excess_to_pearson"]


def kurtosis(w: np.ndarray) -> float:
    """Sample kurtosis ``k = mean((x - xbar)^4) / mean((x - xbar)^2)^2`` (Pearson; normal = 3).

    Equals ``scipy.stats.kurtosis(w, fisher=False, bias=True)``. ``nan`` for constant or empty
    tensors (undefined: zero variance), as scipy returns.
    """
    x = np.asarray(w, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return math.nan
    sq = x - x.mean()
    np.multiply(sq, sq, out=sq)  # squared deviations, in place
    m2 = float(sq.mean())
    m4 = float(np.dot(sq, sq) / x.size)
    if m2 <= (np.finfo(np.float64).resolution * abs(float(x.mean()))) ** 2 or m2 == 0.0:
        return math.nan
    return m4 / (m2 * m2)


def excess_to_pearson(k_excess: float) -> float:
    """Excess kurtosis (scipy's default, Fisher: normal = 0) to Pearson kurtosis (normal = 3)."""
    return float(k_excess) + 3.0
