"""Compress one weight matrix with a recipe: RTN/absmax/GPTQ quantization, magnitude/Wanda/SparseGPT pruning.

:func:`compress_matrix` is what :func:`pvq.apply.apply` calls for every weight, with the input Hessian
``H = sum over calibration inputs of x x^T`` (cols, cols) captured from the partly compressed model
(unnormalised; any positive multiple gives the same result: damping is relative to ``mean(diag H)`` and
Wanda's scores are compared within a row).

- Quantization (:mod:`pvq.apply._scales`): ``rtn`` rounds to nearest on the MSE scale of each group (grid
  search of clipping ratios), ``absmax`` on the max-magnitude (min/max for ``uint``) scale; ``gptq`` runs
  GPTQ over the whole matrix (:mod:`pvq.apply._obs`) on grids chosen by the same MSE scale search.
- Pruning (:mod:`pvq.apply._masks`), always per output row: ``magnitude`` drops the smallest ``|w_ij|``,
  ``wanda`` (Sun et al. 2023) the smallest ``|w_ij| * ||X_j||_2`` with ``||X_j||_2 = sqrt(H_jj)``,
  ``sparsegpt`` (Frantar & Alistarh 2023) selects the mask adaptively in blocks and reconstructs the kept
  weights by OBS error feedback. Unstructured or N:M (keep ``n`` of every ``m`` consecutive inputs).
- Pruning + quantization: the mask is chosen first (by the criterion, as above). With ``rtn``/``absmax``
  the pruned (for ``sparsegpt``: pruned and reconstructed) weights are rounded, scales fitted to the kept
  weights. With ``gptq`` the GPTQ sweep starts again from the *original* weights with the mask fixed:
  pruned weights are set to zero when visited and their error is fed forward like a rounding error, so the
  kept weights compensate pruning and rounding together (for ``sparsegpt`` in natural order this is
  SparseGPT's joint sparsify-and-quantize pass with the mask chosen beforehand). Codes of pruned weights
  are meaningless (the mask zeroes them).
"""

from __future__ import annotations

import math

import torch

from pvq.apply._compressed import CompressedWeight
from pvq.apply._masks import score_mask
from pvq.apply._obs import _static_params, obs_sweep
from pvq.apply._scales import Grid, dequantize_codes, quantize_codes
from pvq.errors import PvqInputError
from pvq.recipes import Prune, Quant, Recipe, parse_recipe

__all__ = [
    "compress_matrix",
    "compress_stack",
    "needs_calibration",
    "quantize_rtn",
    "prune_matrix",
    "row_separable",
]


def needs_calibration(recipe: Recipe) -> bool:
    """True when the recipe needs the input Hessian: ``gptq``, ``wanda`` or ``sparsegpt``."""
    r = parse_recipe(recipe)
    return (r.quant is not None and r.quant.algorithm == "gptq") or (
        r.prune is not None and r.prune.criterion in ("wanda", "sparsegpt")
    )


def _damp(text: str) -> float:
    return float(text) if text else 0.01


def quantize_rtn(W: torch.Tensor, quant: Quant, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """Round ``W`` (rows, cols) to nearest on per-group grids (MSE scale for ``rtn``, absmax otherwise).

    Scales are fitted to the kept weights (``W * mask``). Returns ``(codes (rows, cols) int64, scale (rows,
    groups), zero (rows, groups) or None, weight (rows, cols) = the dequantized codes, masked)``.
    """
    rows, cols = W.shape
    grid = Grid.of(quant)
    Wk = W if mask is None else W * mask
    prm = _static_params(Wk.float(), quant, grid, quant.algorithm != "absmax")
    groups = -(-cols // quant.group_size) if quant.group_size > 0 else 1
    scale = prm.scale.reshape(rows, groups)
    zero = None if prm.zero is None else prm.zero.reshape(rows, groups)
    rep = quant.group_size if quant.group_size > 0 else cols
    s_full = scale.repeat_interleave(rep, dim=1)[:, :cols]
    z_full = None if zero is None else zero.repeat_interleave(rep, dim=1)[:, :cols]
    codes = quantize_codes(Wk.float(), s_full, z_full, grid)
    out = dequantize_codes(codes, s_full, z_full, grid)
    if mask is not None:
        out = out * mask
    return codes, scale, zero, out


def prune_matrix(W: torch.Tensor, prune: Prune, H: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask (rows, cols) bool and pruned weights (rows, cols) float32 of one pruning step."""
    if prune.criterion == "magnitude":
        mask = score_mask(W.abs(), prune)
        return mask, W * mask
    assert H is not None
    if prune.criterion == "wanda":
        norms = H.diagonal().to(torch.float32).clamp(min=0.0).sqrt()  # ||X_j||_2 (up to H's scale)
        mask = score_mask(W.abs() * norms[None, :], prune)
        return mask, W * mask
    res = obs_sweep(W, H, damp=_damp(prune.option("damp")), order="natural", select=prune)
    assert res.mask is not None
    return res.mask, res.weight


def _check(
    name: str, weight: torch.Tensor, H: torch.Tensor | None, shape: tuple[int, ...], needs_h: bool
) -> None:
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise PvqInputError(
            f"{name}: weight must be a 2-D tensor (rows, cols), got {getattr(weight, 'shape', None)}"
        )
    rows, cols = weight.shape
    if rows == 0 or cols == 0:
        raise PvqInputError(f"{name}: weight is empty, shape {tuple(weight.shape)}")
    if not bool(torch.isfinite(weight).all()):
        raise PvqInputError(f"{name}: weight has NaN or Inf values")
    if len(shape) == 0 or shape[0] != rows or math.prod(shape[1:]) != cols:
        raise PvqInputError(f"{name}: shape {shape} does not flatten to the weight's {tuple(weight.shape)}")
    if H is None:
        if needs_h:
            raise PvqInputError(f"{name}: this recipe needs calibration (the input Hessian H), got none")
        return
    if H.shape != (cols, cols):
        raise PvqInputError(
            f"{name}: H must be ({cols}, {cols}) for a weight with {cols} inputs, got {tuple(H.shape)}"
        )
    if not bool(torch.isfinite(H).all()):
        raise PvqInputError(f"{name}: H has NaN or Inf values")
    if bool((H.diagonal() < 0).any()):
        raise PvqInputError(
            f"{name}: H has a negative diagonal; it must be sum x x^T (positive semi-definite)"
        )


def compress_matrix(
    name: str,
    weight: torch.Tensor,
    recipe: Recipe,
    H: torch.Tensor | None = None,
    *,
    shape: tuple[int, ...] | None = None,
) -> CompressedWeight:
    """Compress ``weight`` (rows, cols) with ``recipe``; see the module docstring for the algorithms.

    ``weight`` float (conv kernels flattened to (out, in*kh*kw)); ``H`` (cols, cols) float32/64 = sum over
    calibration inputs of ``x x^T`` (unnormalised is fine), ``None`` when the recipe needs no calibration
    (:func:`needs_calibration`); ``shape`` = the original weight shape (default ``weight.shape``).
    Raises :class:`PvqInputError` when the recipe needs ``H`` and it is ``None``, or on NaN/Inf/shape errors.
    """
    recipe = parse_recipe(recipe)
    shp = tuple(int(d) for d in (shape if shape is not None else weight.shape))
    _check(name, weight, H, shp, needs_calibration(recipe))
    W = weight.detach().to(torch.float32)
    Hc = None if H is None else H.detach()
    if recipe.is_none:
        return CompressedWeight(name, shp, recipe, values=W.to(torch.float16))
    mask: torch.Tensor | None = None
    Wp = W
    if recipe.prune is not None:
        mask, Wp = prune_matrix(W, recipe.prune, Hc)
    q = recipe.quant
    if q is None:
        assert mask is not None
        return CompressedWeight(name, shp, recipe, mask=mask, values=(Wp * mask).to(torch.float16))
    if q.algorithm == "gptq":
        assert Hc is not None
        res = obs_sweep(
            W, Hc, damp=_damp(q.option("damp")), order=q.option("order") or "act", quant=q, mask=mask
        )
        assert res.codes is not None and res.scale is not None
        codes, scale, zero = res.codes, res.scale, res.zero
    else:
        codes, scale, zero, _ = quantize_rtn(Wp, q, mask)
    if q.group_size == 0:  # one scale for the tensor
        scale = scale[:1, :1]
        zero = None if zero is None else zero[:1, :1]
    return quantized_weight(name, shp, recipe, codes, scale, zero, mask)


def quantized_weight(
    name: str,
    shape: tuple[int, ...],
    recipe: Recipe,
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero: torch.Tensor | None,
    mask: torch.Tensor | None,
) -> CompressedWeight:
    """The stored form of a quantized weight: int16 codes and zero points, float32 scales (rows, groups)."""
    return CompressedWeight(
        name,
        shape,
        recipe,
        codes=codes.to(torch.int16),
        scale=scale.to(torch.float32).contiguous(),
        zero_point=None if zero is None else zero.to(torch.int16).contiguous(),
        mask=mask,
    )


def row_separable(recipe: Recipe) -> bool:
    """True when every output row of a weight is compressed independently of the other rows, given ``H``.

    GPTQ and SparseGPT share only ``H`` (hence the column order and ``U``) between rows; scales are per row or
    per group of a row, pruning masks per row (magnitude, Wanda, pvq's per-row SparseGPT selection). Only a
    per-tensor scale (``tensor`` granularity) couples the rows.
    """
    r = parse_recipe(recipe)
    return r.quant is None or r.quant.group_size != 0


def _rows_of(cw: CompressedWeight, name: str, shape: tuple[int, ...], lo: int, hi: int) -> CompressedWeight:
    def cut(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t[lo:hi].clone()

    return CompressedWeight(
        name,
        shape,
        cw.recipe,
        codes=cut(cw.codes),
        scale=cut(cw.scale),
        zero_point=cut(cw.zero_point),
        mask=cut(cw.mask),
        values=cut(cw.values),
    )


def compress_stack(
    items: list[tuple[str, torch.Tensor, tuple[int, ...]]], recipe: Recipe, H: torch.Tensor | None = None
) -> list[CompressedWeight]:
    """Compress several weights that read the same inputs (one ``H``) with one recipe, e.g. q/k/v or gate/up.

    ``items``: ``(name, weight (rows_i, cols), shape_i)``. A :func:`row_separable` recipe is solved once on
    the weights stacked along the rows — the same result per row as one :func:`compress_matrix` call per
    weight (one Cholesky factorisation and one column sweep instead of several; only float rounding inside
    BLAS may differ) —, any other recipe one weight at a time.
    """
    recipe = parse_recipe(recipe)
    if len(items) == 1 or not row_separable(recipe):
        return [compress_matrix(n, w, recipe, H, shape=shp) for n, w, shp in items]
    cols = {int(w.shape[1]) for _, w, _ in items}
    if len(cols) != 1 or any(w.dim() != 2 for _, w, _ in items):
        raise PvqInputError(f"{items[0][0]}: stacked weights must be 2-D with the same number of inputs")
    for n, w, shp in items:
        if len(shp) == 0 or shp[0] != w.shape[0] or math.prod(shp[1:]) != w.shape[1]:
            raise PvqInputError(f"{n}: shape {shp} does not flatten to the weight's {tuple(w.shape)}")
    W = torch.cat([w.detach().to(torch.float32) for _, w, _ in items], dim=0)
    whole = compress_matrix(items[0][0], W, recipe, H)
    out, lo = [], 0
    for n, w, shp in items:
        hi = lo + int(w.shape[0])
        out.append(_rows_of(whole, n, shp, lo, hi))
        lo = hi
    return out
