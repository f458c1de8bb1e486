"""Real bits per weight of a recipe on a tensor, as :func:`pvq.apply.save_compressed` writes it.

This is what a checkpoint pays, not the paper's mask-free accounting (b bits <-> keep ratio b/16, kept as
:attr:`BitsBreakdown.paper`). A weight of shape (out, in, ...) is read as ``out`` rows of
``in_features = prod(shape[1:])`` inputs (conv kernels flattened, as GPTQ does); groups run along a row.
The layout of each tensor in the file is :func:`storage_format`; per weight, among ``numel`` weights:

- codes: ``b`` bits per kept weight (16 for an unquantized FP16 value); compressed-tensors'
  ``pack-quantized`` packs ``32 // b`` codes into an int32 along a row, padding the row to whole int32s
  (used only for b = 2, 4, 8, where that packing wastes nothing but the row padding);
  ``int-quantized``/``float-quantized`` (8-bit, stacked under sparsity) store one byte per kept code;
- scales: 16 bits (FP16) per group (per tensor: one);
- zero points (``uint`` formats): ``pack-quantized`` packs them into int32s along the *output* dimension
  (``ceil(rows / (32 // b))`` int32s per group column), or one int8 per tensor; pvq's own layout packs
  ``b`` bits per group;
- sparsity (unstructured or N:M): a bitmask of 1 bit per weight, each row padded to whole bytes
  (compressed-tensors' ``sparse-bitmask``, ``sparse-24-bitmask`` and pvq's own layout alike);
  ``sparse-bitmask`` adds one int64 row offset per row.
The format header and the tensors' ``shape`` entries are not counted (a few dozen bytes per tensor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pvq.recipes._recipe import Recipe, parse_recipe

__all__ = ["FP16_BITS", "BitsBreakdown", "recipe_bits", "rows_and_inputs", "storage_format"]

FP16_BITS = 16.0
_CT_PACKED_BITS = (2, 4, 8)  # pack-quantized packs 32 // b codes per int32 without a spare bit


def rows_and_inputs(shape: Sequence[int]) -> tuple[int, int]:
    """(rows, inputs per row) of a weight: (shape[0], prod(shape[1:])); a vector is one row."""
    dims = [int(d) for d in shape]
    if not dims or any(d <= 0 for d in dims):
        raise ValueError(f"weight shape must be non-empty with positive dims, got {tuple(shape)}")
    if len(dims) == 1:
        return 1, dims[0]
    return dims[0], math.prod(dims[1:])


def storage_format(recipe: Recipe | str, shape: Sequence[int]) -> str:
    """How a weight of ``shape`` compressed with ``recipe`` is stored by :func:`pvq.apply.save_compressed`.

    compressed-tensors formats (what vLLM and llm-compressor read): ``dense`` (FP16), ``pack-quantized``
    (int/uint with 2, 4 or 8 bits), ``float-quantized`` (fp8), ``sparse-bitmask`` / ``sparse-24-bitmask``
    (pruned, FP16 values), and the stacked ``int-quantized+SPARSE`` / ``float-quantized+SPARSE`` (8-bit
    codes of the kept weights). Everything else is ``pvq-packed`` (pvq's own layout, see
    :mod:`pvq.apply._pvq_format`): other bit widths, ``fp4``/``nf4``, groups that do not divide a row
    (compressed-tensors needs whole groups), and pruning combined with anything but int8/fp8.
    """
    r = parse_recipe(recipe)
    _, cols = rows_and_inputs(shape)
    if r.is_none:
        return "dense"
    p, q = r.prune, r.quant
    sparse = None
    if p is not None:
        sparse = "sparse-24-bitmask" if (p.n, p.m) == (2, 4) and cols % 4 == 0 else "sparse-bitmask"
    if q is None:
        assert sparse is not None
        return sparse
    whole_groups = q.group_size <= 0 or cols % q.group_size == 0
    if not whole_groups:
        return "pvq-packed"
    if sparse is None:
        if q.format == "fp8":
            return "float-quantized"
        if q.format.startswith(("int", "uint")) and q.bits in _CT_PACKED_BITS:
            return "pack-quantized"
        return "pvq-packed"
    if q.format == "fp8":
        return f"float-quantized+{sparse}"
    if q.format == "int8":
        return f"int-quantized+{sparse}"
    return "pvq-packed"


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
    """Real bits per weight of ``recipe`` applied to a weight of ``shape``, as stored (:func:`storage_format`)."""
    r = parse_recipe(recipe)
    rows, cols = rows_and_inputs(shape)
    numel = rows * cols
    fmt = storage_format(r, shape)
    keep = r.prune.keep_ratio if r.prune is not None else 1.0
    meta = 0.0
    if r.prune is not None:
        meta = 8 * math.ceil(cols / 8) / cols  # bitmask, rows padded to bytes
        if fmt.endswith("sparse-bitmask"):
            meta += 64 / cols  # one int64 row offset per row
    if r.quant is None:
        return BitsBreakdown(keep * FP16_BITS, 0.0, 0.0, meta, keep * FP16_BITS)
    q = r.quant
    if q.group_size == 0:
        groups_per_row, scale_rows = 1, 1
    elif q.group_size == -1:
        groups_per_row, scale_rows = 1, rows
    else:
        groups_per_row, scale_rows = math.ceil(cols / q.group_size), rows
    groups = scale_rows * groups_per_row
    scales = groups * FP16_BITS / numel
    codes = keep * q.bits
    zeros = groups * q.bits / numel if q.asymmetric else 0.0
    if fmt == "pack-quantized":
        per_int32 = 32 // q.bits
        codes = 32 * math.ceil(cols / per_int32) / cols
        if q.asymmetric:
            zero_bits = 8 if q.group_size == 0 else 32 * math.ceil(rows / per_int32) * groups_per_row
            zeros = zero_bits / numel
    return BitsBreakdown(codes, scales, zeros, meta, keep * q.bits)
