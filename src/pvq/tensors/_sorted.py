"""A weight tensor sorted once, with prefix sums: the data structure behind the whole sweep.

With the values sorted ascending and prefix sums of ``w`` and ``w^2``, the squared error of any
quantization grid is a sum over its cells of closed-form terms, each cell found by binary search
(``np.searchsorted``); magnitude pruning at any ratio is one prefix sum over the values sorted by
``|w|``. Everything after the sort costs O(cells * log n), not O(n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SortedTensor", "CellStats"]


@dataclass(frozen=True)
class CellStats:
    """Per-cell sums for a batch of grids. All arrays have shape (C, L): C grids, L levels.

    ``count[c, k]``, ``s1[c, k]``, ``s2[c, k]``: number, sum and sum of squares of the weights that
    grid ``c`` maps to its level ``k``.
    """

    count: np.ndarray
    s1: np.ndarray
    s2: np.ndarray

    def sse(self, centers: np.ndarray) -> np.ndarray:
        """Squared error sum of each grid, shape (C,), when cell k is reconstructed as ``centers[c, k]``."""
        # sum over cells of sum_i (w_i - c)^2 = S2 - 2 c S1 + c^2 N
        terms = self.s2 - 2.0 * centers * self.s1 + centers * centers * self.count
        return np.maximum(terms.sum(axis=-1), 0.0)


@dataclass(frozen=True)
class SortedTensor:
    """A flattened tensor, sorted (float64 copies of the exact float32 values) with prefix sums.

    ``values`` (n,) ascending; ``p1``/``p2`` (n+1,) prefix sums of values / squares;
    ``abs_p2`` (n+1,) prefix sums of squares in ascending order of ``|w|``.
    """

    values: np.ndarray
    p1: np.ndarray
    p2: np.ndarray
    abs_p2: np.ndarray

    @classmethod
    def from_tensor(cls, w: torch.Tensor | np.ndarray) -> SortedTensor:
        """Sort a tensor of any shape (flattened; float32 values, as the weights are stored)."""
        if isinstance(w, torch.Tensor):
            arr = w.detach().to(torch.float32).cpu().reshape(-1).numpy()
        else:
            arr = np.asarray(w, dtype=np.float32).reshape(-1)
        n = arr.size
        values = np.sort(arr).astype(np.float64)  # one sort; float32 -> float64 is exact
        p1 = np.empty(n + 1)
        p2 = np.empty(n + 1)
        abs_p2 = np.empty(n + 1)
        p1[0] = p2[0] = abs_p2[0] = 0.0
        np.cumsum(values, out=p1[1:])
        sq = values * values  # exact: a 24-bit mantissa squared fits in 53 bits
        np.cumsum(sq, out=p2[1:])
        mags = np.sort(np.abs(arr)).astype(np.float64)  # |w| ascending (a float32 sort is the fastest)
        np.cumsum(mags * mags, out=abs_p2[1:])
        return cls(values, p1, p2, abs_p2)

    @property
    def n(self) -> int:
        return int(self.values.size)

    @property
    def energy(self) -> float:
        """Sum of squares (float64)."""
        return float(self.p2[-1])

    @property
    def max_abs(self) -> float:
        return float(max(-self.values[0], self.values[-1])) if self.n else 0.0

    def count_below(self, thresholds: np.ndarray) -> np.ndarray:
        """Number of values strictly below each threshold (any shape)."""
        return np.searchsorted(self.values, thresholds, side="left")

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """The sorted values at positions ``idx`` (any shape), float64."""
        return self.values[idx]

    def cells(self, boundaries: np.ndarray) -> CellStats:
        """Cell sums for grids given by their ascending boundaries, shape (C, L-1).

        Cell k of grid c holds the values in ``[boundaries[c, k-1], boundaries[c, k])`` (the first cell
        is unbounded below, the last unbounded above).
        """
        b = np.atleast_2d(boundaries)
        idx = self.count_below(b)  # (C, L-1)
        c = b.shape[0]
        edges = np.concatenate(
            [np.zeros((c, 1), dtype=idx.dtype), idx, np.full((c, 1), self.n, dtype=idx.dtype)], axis=1
        )
        count = np.diff(edges, axis=1).astype(np.float64)
        s1 = np.diff(self.p1[edges], axis=1)
        s2 = np.diff(self.p2[edges], axis=1)
        return CellStats(count, s1, s2)

    def smallest_squares(self, k: np.ndarray | int) -> np.ndarray:
        """Sum of the ``k`` smallest squared magnitudes (the error of pruning them), for each k."""
        return self.abs_p2[np.asarray(k)]
