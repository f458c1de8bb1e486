"""Equal compression against an FP16 baseline: b bits per weight <-> keep ratio b/16."""

from __future__ import annotations

__all__ = ["keep_ratio", "sparsity_for_bits", "bits_for_keep_ratio"]

BASELINE_BITS = 16


def keep_ratio(bits: float, baseline_bits: int = BASELINE_BITS) -> float:
    """Fraction of weights kept by pruning that matches ``bits``-bit quantization in size (b/16)."""
    if not 0 < bits <= baseline_bits:
        raise ValueError(f"bits must be in (0, {baseline_bits}], got {bits}")
    return bits / baseline_bits


def sparsity_for_bits(bits: float, baseline_bits: int = BASELINE_BITS) -> float:
    """Pruning sparsity at equal compression: ``1 - b/16`` (INT8 <-> 50 %, INT4 <-> 75 %)."""
    return 1.0 - keep_ratio(bits, baseline_bits)


def bits_for_keep_ratio(keep: float, baseline_bits: int = BASELINE_BITS) -> float:
    """Inverse of :func:`keep_ratio`."""
    if not 0 <= keep <= 1:
        raise ValueError(f"keep ratio must be in [0, 1], got {keep}")
    return keep * baseline_bits
