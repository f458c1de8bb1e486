"""A weight tensor sorted once, with prefix sums: the data structure behind the whole sweep.

With the values sorted ascending and prefix sums of ``w`` and ``w^2``, the squared error of any
quantization grid is a sum over its cells of closed-form terms, each cell found by binary search
(``np.searchsorted``); magnitude pruning at any ratio is a prefix-sum difference over the window of
the sorted values around 0 that holds the smallest magnitudes. Everything after the sort costs
O(cells * log n), not O(n).

Memory (issue 18 D4): the sorted values are kept as float32 (exact: the weights are float32), 4 bytes
per weight. Tensors of up to ``FULL_PREFIX_MAX`` weights keep float64 prefix sums at every position
(16 bytes per weight, at most 64 MiB); larger ones keep them every ``BLOCK`` positions and add the
partial block from the values on demand (0.25 bytes per weight, ``BLOCK`` reads per lookup).
Construction works in chunks of ``CHUNK`` values, so its temporaries are bounded too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SortedTensor", "CellStats", "FULL_PREFIX_MAX", "BLOCK"]

FULL_PREFIX_MAX = 1 << 22
BLOCK = 64
CHUNK = 1 << 20


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


def _flat_f32(w: torch.Tensor | np.ndarray) -> np.ndarray:
    """The tensor as a flat float32 array (a view when it already is one)."""
    if isinstance(w, torch.Tensor):
        return w.detach().to(torch.float32).cpu().reshape(-1).numpy()
    return np.asarray(w, dtype=np.float32).reshape(-1)


def _ceil_f32(t: np.ndarray) -> np.ndarray:
    """The smallest float32 >= each float64 threshold: for float32 v, ``v < t`` iff ``v < _ceil_f32(t)``."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(over="ignore"):
        c = t.astype(np.float32)
    up = c < t
    if up.any():
        c[up] = np.nextafter(c[up], np.float32(np.inf))
    return c


@dataclass(frozen=True)
class SortedTensor:
    """A flattened tensor, sorted, with prefix sums of values and squares (float64).

    ``values`` (n,) float32 ascending; ``block``: prefix sums are stored at every ``block``-th position,
    ``p1b``/``p2b`` (n // block + 1,) float64; use :meth:`prefix` for any position.
    """

    values: np.ndarray
    block: int
    p1b: np.ndarray
    p2b: np.ndarray
    total1: float
    total2: float

    @classmethod
    def from_tensor(cls, w: torch.Tensor | np.ndarray) -> SortedTensor:
        """Sort a tensor of any shape (flattened; float32 values, as the weights are stored)."""
        values = np.sort(_flat_f32(w))  # the one copy of the weights kept: float32, 4 bytes each
        n = values.size
        block = 1 if n <= FULL_PREFIX_MAX else BLOCK
        nb = n // block
        p1b = np.empty(nb + 1)
        p2b = np.empty(nb + 1)
        p1b[0] = p2b[0] = 0.0
        c1 = c2 = 0.0
        step = max(CHUNK // block, 1) * block
        for a in range(0, nb * block, step):  # float64 in chunks: no full-size float64 temporary
            seg = values[a : min(a + step, nb * block)].astype(np.float64)
            sq = seg * seg  # exact: a 24-bit mantissa squared fits in 53 bits
            if block > 1:
                seg, sq = seg.reshape(-1, block).sum(axis=1), sq.reshape(-1, block).sum(axis=1)
            i = a // block
            np.cumsum(seg, out=p1b[i + 1 : i + 1 + seg.size])
            np.cumsum(sq, out=p2b[i + 1 : i + 1 + sq.size])
            p1b[i + 1 : i + 1 + seg.size] += c1
            p2b[i + 1 : i + 1 + sq.size] += c2
            c1, c2 = float(p1b[i + seg.size]), float(p2b[i + sq.size])
        tail = values[nb * block :].astype(np.float64)
        return cls(values, block, p1b, p2b, c1 + float(tail.sum()), c2 + float(np.dot(tail, tail)))

    @property
    def n(self) -> int:
        return int(self.values.size)

    @property
    def energy(self) -> float:
        """Sum of squares (float64)."""
        return self.total2

    @property
    def max_abs(self) -> float:
        return float(max(-float(self.values[0]), float(self.values[-1]))) if self.n else 0.0

    def nbytes(self) -> int:
        """Bytes held (values and prefix sums)."""
        return int(self.values.nbytes + self.p1b.nbytes + self.p2b.nbytes)

    def prefix(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sums of the first ``idx`` values and of their squares (float64), for an int array of any shape."""
        idx = np.asarray(idx)
        b = self.block
        if b == 1:
            return self.p1b[idx], self.p2b[idx]
        flat = idx.reshape(-1)
        q = flat // b
        s1, s2 = self.p1b[q], self.p2b[q]
        r = flat - q * b
        part = np.flatnonzero(r)
        ar = np.arange(b)
        for a in range(0, part.size, 1 << 14):  # the partial blocks, at most b reads per lookup
            j = part[a : a + (1 << 14)]
            pos = np.minimum((q[j] * b)[:, None] + ar[None, :], self.n - 1)
            g = np.where(ar[None, :] < r[j, None], self.values[pos].astype(np.float64), 0.0)
            s1[j] += g.sum(axis=1)
            s2[j] += (g * g).sum(axis=1)
        return s1.reshape(idx.shape), s2.reshape(idx.shape)

    def gather(self, idx: np.ndarray) -> np.ndarray:
        """The sorted values at positions ``idx`` (any shape), float64."""
        return self.values[idx].astype(np.float64)

    def count_below(self, thresholds: np.ndarray) -> np.ndarray:
        """Number of values strictly below each (float64) threshold, any shape; exact, no float64 copy."""
        return np.searchsorted(self.values, _ceil_f32(thresholds), side="left")

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
        p1, p2 = self.prefix(edges)
        return CellStats(count, np.diff(p1, axis=1), np.diff(p2, axis=1))

    def smallest_squares(self, k: np.ndarray | int) -> np.ndarray:
        """Sum of the ``k`` smallest squared magnitudes (the error of pruning them), for each k.

        The k smallest magnitudes are a window ``[i, i + k)`` of the sorted values around 0: the first
        start i in ``[max(0, z - k), min(z, n - k)]`` (z: the first non-negative position) where
        ``|v_i| <= |v_i+k|``, found by binary search (the condition only turns from false to true).
        """
        k = np.asarray(k, dtype=np.int64)
        kk = k.reshape(-1)
        n, v = self.n, self.values
        z = int(self.count_below(np.array([0.0]))[0])
        lo = np.maximum(0, z - kk)
        hi = np.minimum(z, n - kk)
        for j in range(kk.size):  # binary search per k (few k per call: plain Python is fastest)
            a, b, kj = int(lo[j]), int(hi[j]), int(kk[j])
            while a < b:
                mid = (a + b) // 2
                if abs(float(v[mid])) > abs(float(v[mid + kj])):  # mid + kj < n since mid < n - kj
                    a = mid + 1
                else:
                    b = mid
            lo[j] = a
        _, a = self.prefix(lo)
        _, b = self.prefix(lo + kk)
        out = np.maximum(b - a, 0.0)
        # a difference of two large prefix sums loses digits when the window holds little of the energy:
        # sum such windows directly (in chunks)
        for j in np.flatnonzero((kk > 0) & (out < 1e-6 * b)):  # relative error then above ~1e-10
            i0, i1 = int(lo[j]), int(lo[j] + kk[j])
            out[j] = sum(
                float(np.dot(c, c))
                for c in (v[x : min(x + CHUNK, i1)].astype(np.float64) for x in range(i0, i1, CHUNK))
            )
        return out.reshape(k.shape)
