"""Real bits per weight of a recipe on a tensor: integer codes, FP16 scales, zero points, masks, N:M indices.

This is what a checkpoint pays, not the paper's mask-free accounting (b bits <-> keep ratio b/16, kept as
:attr:`BitsBreakdown.paper`). A weight of shape (out, in, ...) is read as ``out`` rows of
``in_features = prod(shape[1:])`` inputs (conv kernels flattened, as GPTQ does); groups run along a row.
Per weight, for ``n_groups`` scale groups among ``numel`` weights:

- codes: ``b`` bits per kept weight (16 for an unquantized FP16 value);
- scales: 16 bits (FP16) per group; zero points (``uint`` formats): ``b`` bits per group, packed like codes;
- unstructured sparsity: a 1-bit mask per weight (compressed-tensors' ``sparse-bitmask``);
- N:M sparsity: an index of ``ceil(log2 M)`` bits per kept weight (2:4 -> 1 bit per weight, the layout of
  NVIDIA's sparse tensor cores and compressed-tensors' ``sparse-24``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pvq.recipes._recipe import Recipe, parse_recipe

__all__ = ["FP16_BITS", "BitsBreakdown", "recipe_bits", "rows_and_inputs"]

FP16_BITS = 16.0


def rows_and_inputs(shape: Sequence[int]) -> tuple[int, int]:
    """(rows, inputs per row) of a weight: (shape[0], prod(shape[1:])); a vector is one row."""
    dims = [int(d) for d in shape]
    if not dims or any(d <= 0 for d in dims):
        raise ValueError(f"weight shape must be non-empty with positive dims, got {tuple(shape)}")
    if len(dims) == 1:
        return 1, dims[0]
    return dims[0], math.prod(dims[1:])


@dataclass(frozen=True)
class BitsBreakdown:
    """Bits per weight by part; ``total`` is what storage costs, ``paper`` the mask-free accounting."""

    codes: float
    scales: float
    zero_points: float
    sparsity_metadata: float
    paper: float

    @property
    def total(self) -> float:
        return self.codes + self.scales + self.zero_points + self.sparsity_metadata

    def to_json(self) -> dict[str, float]:
        return {
            "bits_per_weight": self.total,
            "codes": self.codes,
            "scales": self.scales,
            "zero_points": self.zero_points,
            "sparsity_metadata": self.sparsity_metadata,
            "paper_bits_per_weight": self.paper,
        }


def recipe_bits(recipe: Recipe | str, shape: Sequence[int]) -> BitsBreakdown:
    """Real bits per weight of ``recipe`` applied to a weight of ``shape``."""
    r = parse_recipe(recipe)
    rows, cols = rows_and_inputs(shape)
    numel = rows * cols
    keep = r.prune.keep_ratio if r.prune is not None else 1.0
    meta = 0.0
    if r.prune is not None:
        p = r.prune
        meta = p.n * math.ceil(math.log2(p.m)) / p.m if p.structured else 1.0
    if r.quant is None:
        return BitsBreakdown(keep * FP16_BITS, 0.0, 0.0, meta, keep * FP16_BITS)
    q = r.quant
    if q.group_size == 0:
        groups = 1
    elif q.group_size == -1:
        groups = rows
    else:
        groups = rows * math.ceil(cols / q.group_size)
    scales = groups * FP16_BITS / numel
    zeros = groups * q.bits / numel if q.asymmetric else 0.0
    return BitsBreakdown(keep * q.bits, scales, zeros, meta, keep * q.bits)
