"""Equal compression against an FP16 baseline: b bits per weight <-> keep ratio b/16.

The paper (Sec. 2) counts no mask overhead; :func:`storage_bits_per_weight` and
:func:`keep_ratio_with_overhead` add it when asked:

- unstructured sparsity: a 1-bit mask per weight (6.25 % of FP16, paper Sec. 6);
- channel pruning: 1 bit per channel, i.e. ``1 / weights_per_channel`` bits per weight;
- N:M sparsity, ``nm_metadata="combinatorial"`` (default): ``ceil(log2(C(M, N))) / M`` bits per weight
  (the index of the kept subset in each group of M; 2:4 -> 3/4 bit);
  ``nm_metadata="index"``: ``N * ceil(log2 M) / M`` bits per weight (a position index per kept
  value, as NVIDIA's 2:4 sparse tensor cores store it; 2:4 -> 1 bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "BASELINE_BITS",
    "keep_ratio",
    "sparsity_for_bits",
    "bits_for_keep_ratio",
    "Dense",
    "Unstructured",
    "NM",
    "Channel",
    "SparsityPattern",
    "metadata_bits_per_weight",
    "storage_bits_per_weight",
    "keep_ratio_with_overhead",
]

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


@dataclass(frozen=True)
class Dense:
    """No sparsity: every weight stored."""

    def keep(self) -> float:
        return 1.0


@dataclass(frozen=True)
class Unstructured:
    """Unstructured sparsity keeping a fraction ``keep_ratio`` of the weights (mask: 1 bit per weight)."""

    keep_ratio: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.keep_ratio <= 1.0:
            raise ValueError(f"Unstructured.keep_ratio must be in [0, 1], got {self.keep_ratio}")

    def keep(self) -> float:
        return self.keep_ratio


@dataclass(frozen=True)
class NM:
    """N:M structured sparsity: N kept values in every group of M consecutive weights."""

    n: int
    m: int

    def __post_init__(self) -> None:
        if not (isinstance(self.n, int) and isinstance(self.m, int)) or not 0 < self.n <= self.m:
            raise ValueError(f"NM needs integers 0 < n <= m, got {self.n}:{self.m}")

    def keep(self) -> float:
        return self.n / self.m


@dataclass(frozen=True)
class Channel:
    """Structured (channel) pruning keeping a fraction ``keep_ratio`` of whole output channels of
    ``weights_per_channel`` weights each; its mask costs 1 bit per channel."""

    keep_ratio: float
    weights_per_channel: int

    def __post_init__(self) -> None:
        if not 0.0 <= self.keep_ratio <= 1.0:
            raise ValueError(f"Channel.keep_ratio must be in [0, 1], got {self.keep_ratio}")
        if not isinstance(self.weights_per_channel, int) or self.weights_per_channel < 1:
            raise ValueError(
                f"Channel.weights_per_channel must be a positive integer, got {self.weights_per_channel}"
            )

    def keep(self) -> float:
        return self.keep_ratio


SparsityPattern = Dense | Unstructured | NM | Channel


def metadata_bits_per_weight(pattern: SparsityPattern, nm_metadata: str = "combinatorial") -> float:
    """Bits of mask/index metadata per weight (dense and N = M: 0)."""
    if isinstance(pattern, Dense):
        return 0.0
    if isinstance(pattern, Unstructured):
        return 0.0 if pattern.keep_ratio == 1.0 else 1.0
    if isinstance(pattern, Channel):
        return 0.0 if pattern.keep_ratio == 1.0 else 1.0 / pattern.weights_per_channel
    if isinstance(pattern, NM):
        if pattern.n == pattern.m:
            return 0.0
        if nm_metadata == "combinatorial":
            return math.ceil(math.log2(math.comb(pattern.m, pattern.n))) / pattern.m
        if nm_metadata == "index":
            return pattern.n * math.ceil(math.log2(pattern.m)) / pattern.m
        raise ValueError(f"nm_metadata must be combinatorial|index, got {nm_metadata!r}")
    raise TypeError(f"unknown sparsity pattern {pattern!r}")


def storage_bits_per_weight(
    value_bits: float = BASELINE_BITS,
    pattern: SparsityPattern | None = None,
    *,
    overhead: bool = True,
    nm_metadata: str = "combinatorial",
) -> float:
    """Average storage in bits per (original) weight: ``keep * value_bits + metadata``.

    ``value_bits``: bits of each stored value (16 for FP16 pruning, b for b-bit quantization).
    ``overhead=False`` reproduces the paper's accounting (mask for free).
    Example: 75 % unstructured FP16 pruning -> 4 bits without overhead, 5 bits with the mask.
    """
    if not 0 < value_bits <= 64:
        raise ValueError(f"value_bits must be in (0, 64], got {value_bits}")
    pattern = Dense() if pattern is None else pattern
    meta = metadata_bits_per_weight(pattern, nm_metadata) if overhead else 0.0
    return pattern.keep() * value_bits + meta


def keep_ratio_with_overhead(
    bits: float, value_bits: float = BASELINE_BITS, *, overhead: bool = True
) -> float:
    """Unstructured keep ratio that fits in ``bits`` per weight when each kept value costs ``value_bits``
    and (with ``overhead``) the mask 1 bit per weight: ``(bits - 1) / value_bits``, clipped at 0.

    Without overhead this is :func:`keep_ratio` (b/16).
    """
    if not 0 < bits <= value_bits:
        raise ValueError(f"bits must be in (0, {value_bits}], got {bits}")
    return max(0.0, (bits - (1.0 if overhead else 0.0)) / value_bits)
