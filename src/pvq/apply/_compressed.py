"""The compressed form of one weight tensor, as :func:`pvq.apply.apply` produces it and the savers store it.

A weight of shape (out, in, ...) is handled as a matrix (rows, cols) = (out, prod(in, ...)) (conv kernels
flattened as GPTQ does); scale groups run along a row (see :mod:`pvq.recipes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pvq.formats import get_format
from pvq.recipes import BitsBreakdown, Recipe, recipe_bits, rows_and_inputs

__all__ = ["CompressedWeight", "format_levels", "group_columns"]

_FLOAT_FORMATS = {"fp8": "fp8_e4m3", "fp4": "fp4_e2m1", "nf4": "nf4"}


def format_levels(fmt: str) -> torch.Tensor | None:
    """Levels (ascending, float32) of a float format (``fp8``, ``fp4``, ``nf4``); ``None`` for int/uint."""
    name = _FLOAT_FORMATS.get(fmt)
    return None if name is None else torch.as_tensor(get_format(name).levels(), dtype=torch.float32)


def group_columns(cols: int, group_size: int) -> int:
    """Scale groups per row: 1 for per tensor/channel (group_size 0/-1), else ceil(cols / group_size)."""
    return 1 if group_size <= 0 else math.ceil(cols / group_size)


@dataclass(frozen=True, eq=False)
class CompressedWeight:
    """One compressed weight.

    - ``codes`` (rows, cols), int16: for ``intB`` the signed integer, for ``uintB`` the unsigned code,
      for float formats (``fp8``/``fp4``/``nf4``) the index into :func:`format_levels`; ``None`` when the
      recipe does not quantize.
    - ``scale`` (rows, groups) float32, ``groups = group_columns(cols, group_size)``; per tensor: (1, 1).
    - ``zero_point`` (rows, groups) int16 for ``uint`` formats, else ``None``.
    - ``mask`` (rows, cols) bool, True where the weight is kept; ``None`` when the recipe does not prune.
    - ``values`` (rows, cols) float16: the kept weights of a pruned-only recipe (zeros elsewhere).
    ``dequantize()`` gives the float32 weight of ``shape`` that the compressed model computes with.
    """

    name: str
    shape: tuple[int, ...]
    recipe: Recipe
    codes: torch.Tensor | None = None
    scale: torch.Tensor | None = None
    zero_point: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    values: torch.Tensor | None = None

    @property
    def rows_cols(self) -> tuple[int, int]:
        return rows_and_inputs(self.shape)

    def bits(self) -> BitsBreakdown:
        """Real bits per weight (overhead counted) of this tensor's recipe."""
        return recipe_bits(self.recipe, self.shape)

    def dequantize(self) -> torch.Tensor:
        """The float32 weight (``shape``) this compressed form stands for."""
        rows, cols = self.rows_cols
        q = self.recipe.quant
        if q is None:
            if self.values is None:
                raise ValueError(f"{self.name}: a pruned-only weight needs values")
            w = self.values.float()
        else:
            if self.codes is None or self.scale is None:
                raise ValueError(f"{self.name}: a quantized weight needs codes and scale")
            levels = format_levels(q.format)
            c = self.codes.long()
            vals = levels[c] if levels is not None else c.float()  # (rows, cols)
            if self.zero_point is not None:
                vals = vals - self._expand(self.zero_point.float(), rows, cols)
            w = vals * self._expand(self.scale.float(), rows, cols)
        if self.mask is not None:
            w = w * self.mask
        return w.reshape(self.shape)

    def _expand(self, per_group: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        """(rows or 1, groups) -> (rows, cols) by repeating each group's value over its columns."""
        q = self.recipe.quant
        assert q is not None
        if q.group_size <= 0:
            return per_group.expand(rows, 1).expand(rows, cols)
        return per_group.repeat_interleave(q.group_size, dim=1)[:, :cols].expand(rows, cols)
