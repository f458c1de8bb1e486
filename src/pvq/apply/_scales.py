"""Quantization grids of one recipe: per-group scales (MSE or absmax), zero points, codes, dequantization.

Pure torch, vectorised over all groups of a matrix. A *group* is a run of consecutive inputs of one row
(``gN``), a whole row (``channel``) or the whole matrix (``tensor``); its grid is ``scale * level`` for the
format's levels: integers ``-2^(B-1)..2^(B-1)-1`` (``intB``), ``0..2^B-1`` minus an integer zero point
(``uintB``), or :func:`pvq.apply.format_levels` (``fp8``/``fp4``/``nf4``, codes = level indices).

Scales are rounded to float16 before the codes are computed, because that is what a checkpoint stores
(:mod:`pvq.recipes` counts 16 bits per scale): :meth:`CompressedWeight.dequantize` then reproduces exactly
the weights the algorithms worked with, before and after saving.

``rtn`` picks each group's scale by an **MSE scale search (grid of 32 clipping ratios)**: the clipping
ratio ``p`` (scale = ``p`` * absmax scale; for ``uint``, min and max both shrunk by ``p``) is searched on
32 ratios evenly spaced in [0.2, 1], then on 8 ratios spaced evenly within one coarse step either side of
the best; the ratio with the least squared error of the group wins. This is a grid search, not a certified
optimum. ``absmax`` uses ``p = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pvq.apply._compressed import format_levels
from pvq.recipes import Quant

__all__ = [
    "Grid",
    "GridParams",
    "find_params",
    "quantize_codes",
    "dequantize_codes",
    "COARSE_RATIOS",
    "FINE_RATIOS",
    "round_minifloat",
]

COARSE_RATIOS = 32
FINE_RATIOS = 8
_MIN_RATIO = 0.2
_FP16_TINY = 2.0**-24  # smallest positive float16 (subnormal): a zero scale would lose the group
# (mantissa bits, smallest normal exponent) of the minifloat formats: rounding to them is done with the
# exponent (fast, used inside the scale search) instead of a search over the level table
_MINIFLOAT = {"fp8": (3, -6), "fp4": (1, 0)}


@dataclass(frozen=True)
class Grid:
    """The code grid of a format: ``levels`` (float formats) or the integer range ``[qmin, qmax]``."""

    format: str
    qmin: int
    qmax: int
    levels: torch.Tensor | None  # ascending float32 levels, or None for int/uint
    asymmetric: bool

    @classmethod
    def of(cls, quant: Quant) -> Grid:
        levels = format_levels(quant.format)
        if levels is not None:
            return cls(quant.format, 0, levels.numel() - 1, levels, False)
        b = quant.bits
        if quant.asymmetric:
            return cls(quant.format, 0, 2**b - 1, None, True)
        return cls(quant.format, -(2 ** (b - 1)), 2 ** (b - 1) - 1, None, False)

    @property
    def max_level(self) -> float:
        """Largest level magnitude that absmax maps the group maximum to (symmetric formats)."""
        if self.levels is not None:
            return float(self.levels.abs().max())
        return float(self.qmax)


@dataclass(frozen=True)
class GridParams:
    """Per-group parameters, ``scale`` (G,) float32 (float16-representable) and ``zero`` (G,) or None."""

    scale: torch.Tensor
    zero: torch.Tensor | None


def _to_fp16(scale: torch.Tensor) -> torch.Tensor:
    s = scale.clamp(min=_FP16_TINY, max=65504.0)
    return s.to(torch.float16).to(torch.float32).clamp(min=_FP16_TINY)


def _params_at_ratio(
    grid: Grid, amax: torch.Tensor, xmin: torch.Tensor, xmax: torch.Tensor, p: torch.Tensor | float
) -> GridParams:
    """Scale (and zero point) of each group when its range is shrunk by ratio ``p``."""
    if grid.asymmetric:
        lo, hi = xmin * p, xmax * p
        scale = ((hi - lo) / grid.qmax).clamp(min=_FP16_TINY)
        zero = torch.round(-lo / scale).clamp(grid.qmin, grid.qmax)
        return GridParams(scale, zero)
    return GridParams((amax * p / grid.max_level).clamp(min=_FP16_TINY), None)


def quantize_codes(
    x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None, grid: Grid
) -> torch.Tensor:
    """Nearest codes (int64, shape of ``x``) of ``x`` on the grid ``scale`` (broadcast) [and ``zero``]."""
    if grid.levels is not None:
        lv = grid.levels.to(x.dtype)
        mids = (lv[1:] + lv[:-1]) / 2
        return torch.bucketize(x / scale, mids)
    z = torch.round(x / scale)
    if zero is not None:
        z = z + zero
    return z.clamp(grid.qmin, grid.qmax).long()


def dequantize_codes(
    codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | None, grid: Grid
) -> torch.Tensor:
    """The weights codes stand for, computed as :meth:`CompressedWeight.dequantize` does (float32 ops)."""
    vals = grid.levels[codes] if grid.levels is not None else codes.float()
    if zero is not None:
        vals = vals - zero.float()
    return vals * scale.float()


def _group_stats(x: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """absmax, min(., 0) and max(., 0) of each row of ``x`` (G, n)."""
    xmin = x.amin(dim=1).clamp(max=0.0)
    xmax = x.amax(dim=1).clamp(min=0.0)
    return torch.maximum(-xmin, xmax), xmin, xmax


def round_minifloat(x: torch.Tensor, fmt: str, max_level: float) -> torch.Tensor:
    """Nearest value of the minifloat format ``fmt`` (``fp8`` E4M3 or ``fp4`` E2M1, saturating at
    ``max_level``) to each element of ``x``: the same values as the nearest entry of the level table."""
    mbits, emin = _MINIFLOAT[fmt]
    v = x.abs()
    step = torch.exp2(torch.floor(torch.log2(v.clamp(min=1e-30))).clamp_(min=emin).sub_(mbits))
    return v.div_(step).round_().mul_(step).clamp_(max=max_level).copysign_(x)


def _sq_error(x: torch.Tensor, prm: GridParams, grid: Grid) -> torch.Tensor:
    """Squared rounding error of each group (row of ``x``) on its grid; in-place float ops for speed."""
    s = prm.scale[:, None]
    if grid.format in _MINIFLOAT:
        q = round_minifloat(x / s, grid.format, grid.max_level).mul_(s)
        return q.sub_(x).square_().sum(dim=1)
    if grid.levels is not None:
        q = dequantize_codes(quantize_codes(x, s, None, grid), s, None, grid)
        return q.sub_(x).square_().sum(dim=1)
    t = x / s
    t.round_()
    if prm.zero is not None:
        z = prm.zero[:, None]
        t.add_(z).clamp_(grid.qmin, grid.qmax).sub_(z)
    else:
        t.clamp_(grid.qmin, grid.qmax)
    return t.mul_(s).sub_(x).square_().sum(dim=1)


def _coarse_ratios() -> list[float]:
    step = (1.0 - _MIN_RATIO) / (COARSE_RATIOS - 1)
    return [1.0 - k * step for k in range(COARSE_RATIOS)]


def _fine_ratios(centre: torch.Tensor) -> torch.Tensor:
    """(G, FINE_RATIOS) float32: ratios evenly spaced within one coarse step either side of ``centre`` (G,)."""
    step = (1.0 - _MIN_RATIO) / (COARSE_RATIOS - 1)
    return torch.stack(
        [
            (centre + step * (2.0 * k / (FINE_RATIOS - 1) - 1.0)).clamp(_MIN_RATIO * 0.5, 1.0)
            for k in range(FINE_RATIOS)
        ],
        dim=1,
    )


def _search_ratios(
    x: torch.Tensor, grid: Grid, amax: torch.Tensor, xmin: torch.Tensor, xmax: torch.Tensor
) -> torch.Tensor:
    """Best clipping ratio (G,) float32 of each group (row of ``x``) by the two-stage grid search.

    The first ratio with the least error wins (coarse ratios from 1 down, then the fine ones), so a fine
    ratio replaces the coarse one only when strictly better. Errors come from the compiled
    :func:`pvq.apply._sweep_kernels.grid_errors` (one fused pass per group and ratio, in cache; about 3x
    faster) for int, uint and nf4 on float32 ``x``; fp8/fp4 (rounded by exponent, faster in torch) and other
    dtypes use :func:`_search_ratios_torch`, the reference (it sums squares in float32, the kernel in
    float64; ``tests/test_apply_kernels.py`` checks they choose the same ratios)."""
    if grid.format in _MINIFLOAT or x.dtype != torch.float32:
        return _search_ratios_torch(x, grid, amax, xmin, xmax)
    from pvq.apply._sweep_kernels import MODE_INT, MODE_LEVELS, MODE_UINT, grid_errors

    G = x.shape[0]
    if grid.levels is not None:
        mode = MODE_LEVELS
        lv = grid.levels.to(torch.float32)
        mids = ((lv[1:] + lv[:-1]) / 2).numpy()
        lvn = lv.numpy()
    else:
        mode = MODE_UINT if grid.asymmetric else MODE_INT
        mids = lvn = np.zeros(1, dtype=np.float32)
    args = (
        amax.contiguous().numpy(),
        xmin.contiguous().numpy(),
        xmax.contiguous().numpy(),
        mode,
        np.float32(grid.qmin),
        np.float32(grid.qmax),
        np.float32(grid.max_level),
        mids,
        lvn,
    )
    coarse = torch.tensor(_coarse_ratios(), dtype=torch.float32).expand(G, COARSE_RATIOS).contiguous()
    err_c = np.empty((G, COARSE_RATIOS), dtype=np.float64)
    x = x.contiguous()
    grid_errors(x.numpy(), coarse.numpy(), *args, err_c)
    centre = coarse[torch.arange(G), torch.from_numpy(err_c.argmin(axis=1))]
    fine = _fine_ratios(centre).contiguous()
    err_f = np.empty((G, FINE_RATIOS), dtype=np.float64)
    grid_errors(x.numpy(), fine.numpy(), *args, err_f)
    ratios = torch.cat([coarse, fine], dim=1)
    first_min = torch.from_numpy(np.concatenate([err_c, err_f], axis=1).argmin(axis=1))
    return ratios[torch.arange(G), first_min]


def _search_ratios_torch(
    x: torch.Tensor, grid: Grid, amax: torch.Tensor, xmin: torch.Tensor, xmax: torch.Tensor
) -> torch.Tensor:
    """The grid search of :func:`_search_ratios` in torch, one vectorised pass per ratio."""
    best = torch.ones_like(amax)
    best_err = torch.full_like(amax, float("inf"))
    for p in _coarse_ratios():
        err = _sq_error(x, _params_at_ratio(grid, amax, xmin, xmax, p), grid)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, torch.full_like(best, p), best)
    fine = _fine_ratios(best.clone())
    for k in range(FINE_RATIOS):
        p = fine[:, k]
        err = _sq_error(x, _params_at_ratio(grid, amax, xmin, xmax, p), grid)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, p, best)
    return best


def find_params(x: torch.Tensor, grid: Grid, mse: bool) -> GridParams:
    """Scale (and zero point) of each group, one group per row of ``x`` (G, n) float32.

    ``mse``: the MSE scale search of the module docstring; otherwise absmax (min/max for ``uint``).
    Scales come back rounded to float16; zero points are recomputed for the rounded scale.
    """
    x = x.float()
    amax, xmin, xmax = _group_stats(x, grid)
    if not mse:
        best = torch.ones_like(amax)
    else:
        best = _search_ratios(x, grid, amax, xmin, xmax)
    prm = _params_at_ratio(grid, amax, xmin, xmax, best)
    scale = _to_fp16(prm.scale)
    if grid.asymmetric:
        lo = xmin * best
        return GridParams(scale, torch.round(-lo / scale).clamp(grid.qmin, grid.qmax))
    return GridParams(scale, None)
