"""Integer grids. Symmetric signed b-bit grid: ``scale * {-2^(b-1), ..., 2^(b-1) - 1}`` (DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IntGrid", "quantize"]


@dataclass(frozen=True)
class IntGrid:
    """A b-bit integer grid. ``signed`` grids are symmetric-signed as in the paper's code."""

    bits: int
    signed: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.bits, (int, np.integer)) or not 1 <= int(self.bits) <= 16:
            raise ValueError(f"IntGrid.bits must be an integer in 1..16, got {self.bits!r}")

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    def levels(self) -> np.ndarray:
        """The integer levels, ascending."""
        return np.arange(self.qmin, self.qmax + 1, dtype=np.int64)


def quantize(w: np.ndarray, scale: float, qmin: int, qmax: int) -> np.ndarray:
    """Round-to-nearest onto ``scale * {qmin..qmax}`` with clipping (ties to even, as torch/numpy round)."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    return np.clip(np.round(np.asarray(w) / scale), qmin, qmax) * scale
