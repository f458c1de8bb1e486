"""Compression formats: integer and float grids, sparsity patterns, equal-compression accounting."""

from pvq.formats._accounting import bits_for_keep_ratio, keep_ratio, sparsity_for_bits
from pvq.formats._int import IntGrid, quantize

__all__ = ["IntGrid", "quantize", "keep_ratio", "sparsity_for_bits", "bits_for_keep_ratio"]
