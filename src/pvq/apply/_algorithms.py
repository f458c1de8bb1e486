"""TEMPORARY stand-in for helper "algos"' per-matrix algorithms (the integrator takes algos' file over this one).

Only what the driver needs to be developed and tested: round to nearest (``rtn``: MSE scale from a small grid
of shrunken absmax scales; ``absmax``) for ``int``/``uint`` formats at any granularity, and magnitude or Wanda
pruning per row (unstructured or N:M). Everything else raises :class:`PvqInputError` "not available".
"""

from __future__ import annotations

import math

import torch

from pvq.apply._compressed import CompressedWeight, group_columns
from pvq.errors import PvqInputError
from pvq.recipes import Recipe, parse_recipe

__all__ = ["compress_matrix", "needs_calibration"]


def needs_calibration(recipe: Recipe | str) -> bool:
    """Whether the recipe uses the inputs' Gram matrix H (gptq, wanda, sparsegpt)."""
    r = parse_recipe(recipe)
    return (r.quant is not None and r.quant.algorithm == "gptq") or (
        r.prune is not None and r.prune.criterion in ("wanda", "sparsegpt")
    )


def _magnitude_mask(w: torch.Tensor, recipe: Recipe, H: torch.Tensor | None = None) -> torch.Tensor:
    """Keep the largest scores per row: |w|, or Wanda's |w| * ||x_j|| (sqrt of H's diagonal) when ``H``."""
    p = recipe.prune
    assert p is not None
    rows, cols = w.shape
    if H is not None:
        w = w.abs() * torch.diagonal(H).clamp(min=0).sqrt()[None, :]
    if p.structured:  # keep the n largest |w| of every m consecutive inputs (a short tail keeps its share)
        pad = (-cols) % p.m
        a = torch.cat([w.abs(), torch.full((rows, pad), -1.0)], 1).reshape(rows, -1, p.m)
        keep = torch.zeros_like(a, dtype=torch.bool).scatter_(2, a.topk(p.n, dim=2).indices, True)
        return keep.reshape(rows, -1)[:, :cols]
    k = cols - math.floor(cols * p.sparsity / 100.0)
    return torch.zeros_like(w, dtype=torch.bool).scatter_(1, w.abs().topk(k, dim=1).indices, True)


def _codes(w: torch.Tensor, f: torch.Tensor, bits: int, asym: bool) -> tuple[torch.Tensor, ...]:
    """(codes, scale, zero, reconstruction) of groups ``w`` (n_groups, g) with their range shrunk by ``f``."""
    if asym:
        lo, hi = (w.amin(1) * f).clamp(max=0), (w.amax(1) * f).clamp(min=0)
        s = ((hi - lo) / (2**bits - 1)).clamp(min=1e-12)
        z = torch.round(-lo / s)
        c = torch.clamp(torch.round(w / s[:, None]) + z[:, None], 0, 2**bits - 1)
        return c, s, z, (c - z[:, None]) * s[:, None]
    s = (w.abs().amax(1) * f / (2 ** (bits - 1) - 1)).clamp(min=1e-12)
    c = torch.clamp(torch.round(w / s[:, None]), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return c, s, torch.zeros_like(s), c * s[:, None]


def _round(
    w: torch.Tensor, bits: int, asym: bool, mse: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes, scale, zero) of groups ``w`` (n_groups, g); MSE picks the best of 20 shrunken ranges per group."""
    best_f = torch.ones(w.shape[0])
    if mse:
        err = torch.full((w.shape[0],), math.inf)
        for f in torch.linspace(1.0, 0.5, 20):
            e = ((_codes(w, f, bits, asym)[3] - w) ** 2).sum(1)
            best_f = torch.where(e < err, f, best_f)
            err = torch.minimum(e, err)
    c, s, z, _ = _codes(w, best_f, bits, asym)
    return c, s, z


def compress_matrix(
    name: str,
    weight: torch.Tensor,
    recipe: Recipe | str,
    H: torch.Tensor | None,
    *,
    shape: tuple[int, ...] | None = None,
) -> CompressedWeight:
    """Compress ``weight`` (rows, cols) float32 with ``recipe`` (rtn/absmax, magnitude only in this stand-in)."""
    r = parse_recipe(recipe)
    wanda = r.prune is not None and r.prune.criterion == "wanda"
    if wanda and H is None:
        raise PvqInputError(f"{name}: wanda needs the input Gram matrix H")
    gptq = r.quant is not None and r.quant.algorithm == "gptq"
    sparsegpt = r.prune is not None and r.prune.criterion == "sparsegpt"
    if gptq or sparsegpt or (r.quant is not None and not r.quant.format.startswith(("int", "uint"))):
        raise PvqInputError(f"{name}: recipe {r} is not available in the temporary stand-in algorithms")
    w = weight.detach().float()
    rows, cols = w.shape
    shp = tuple(shape) if shape is not None else (rows, cols)
    mask = _magnitude_mask(w, r, H if wanda else None) if r.prune is not None else None
    if mask is not None:
        w = w * mask
    q = r.quant
    if q is None:
        return CompressedWeight(name, shp, r, mask=mask, values=w.half())
    gs = cols if q.group_size == -1 else q.group_size
    if q.group_size == 0:
        groups = w.reshape(1, -1)
    else:
        ng = group_columns(cols, gs)
        groups = torch.nn.functional.pad(w, (0, ng * gs - cols)).reshape(rows * ng, gs)
    c, s, z = _round(groups, q.bits, q.asymmetric, q.algorithm == "rtn")
    codes = c.reshape(rows, -1)[:, :cols] if q.group_size != 0 else c.reshape(rows, cols)
    n_g = 1 if q.group_size == 0 else group_columns(cols, gs)
    scale = s.reshape(-1 if q.group_size else 1, n_g if q.group_size else 1)
    zero = z.reshape(scale.shape).to(torch.int16) if q.asymmetric else None
    return CompressedWeight(
        name, shp, r, codes=codes.to(torch.int16), scale=scale.float(), zero_point=zero, mask=mask
    )
