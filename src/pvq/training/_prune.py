"""Magnitude-pruning masks as a weight parametrization: effective weight = ``original ⊙ mask``.

The mask is a buffer, so optimizer steps update ``original`` but can never revive a pruned weight in
the effective weight. ``set_sparsity`` recomputes each mask from the *effective* weight, so once a
weight is pruned it stays pruned as the sparsity grows (Zhu & Gupta 2017). Per-tensor (uniform)
sparsity: every layer is pruned to the same fraction, the equal-compression setting of the paper.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from pvq.training._lsq import compressible_layers, parametrized_modules

__all__ = ["MaskWeight", "add_masks", "mask_modules", "set_sparsity", "model_sparsity", "magnitude_mask", "score_mask"]


class MaskWeight(nn.Module):
    """Parametrization ``w -> w ⊙ mask`` with a fixed (non-learnable) 0/1 mask buffer of w's shape."""

    def __init__(self, shape: torch.Size) -> None:
        super().__init__()
        self.register_buffer("mask", torch.ones(shape))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask


def add_masks(model: nn.Module, layers: list[str] | None = None) -> list[str]:
    """Register an all-ones ``MaskWeight`` on each compressible layer (or on ``layers``); return the names.

    Register masks *before* any LSQ parametrization so that the pruned weight is what gets quantized.
    """
    names = []
    for name, mod in compressible_layers(model):
        if layers is not None and name not in layers:
            continue
        mask = MaskWeight(mod.weight.shape).to(mod.weight.device)
        parametrize.register_parametrization(mod, "weight", mask)
        names.append(name)
    return names


def mask_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module, MaskWeight]]:
    """(layer name, layer, its MaskWeight) for every masked layer."""
    return parametrized_modules(model, MaskWeight)


@torch.no_grad()
def set_sparsity(model: nn.Module, sparsity: float, scores: dict[str, torch.Tensor] | None = None) -> None:
    """Set every mask to zero the ``floor(sparsity · n)`` smallest-magnitude effective (masked) weights.

    With ``scores`` (``{layer: importance of w's shape}``, e.g. from ``pvq.training.saliency``) the lowest
    scores are pruned instead; weights already pruned stay pruned whatever their score.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    for name, mod, p in mask_modules(model):
        if scores is None:
            w = mod.parametrizations["weight"].original * p.mask
            p.mask.copy_(magnitude_mask(w, sparsity))
            continue
        if name not in scores or scores[name].shape != p.mask.shape:
            raise ValueError(f"set_sparsity: no score of shape {tuple(p.mask.shape)} for layer {name!r}")
        sc = scores[name].detach().to(p.mask.device, torch.float64).clone()
        sc[p.mask == 0] = -torch.inf
        p.mask.copy_(score_mask(sc, sparsity).to(p.mask.dtype))


@torch.no_grad()
def model_sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros over all compressible layers' effective weights."""
    zeros = total = 0
    for _, mod in compressible_layers(model):
        w = mod.weight
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / max(total, 1)


# ---------------------------------------------------------------- pure numeric functions


def magnitude_mask(w: torch.Tensor, sparsity: float) -> torch.Tensor:
    """0/1 mask (w's shape and dtype) zeroing the ``floor(sparsity · n)`` smallest |w| (ties by sort order)."""
    n = w.numel()
    k = int(sparsity * n)  # floor, as DESIGN.md
    mask = torch.ones(n, dtype=w.dtype, device=w.device)
    if k > 0:
        order = torch.argsort(w.detach().abs().flatten(), stable=True)
        mask[order[:k]] = 0
    return mask.view_as(w)


def score_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """0/1 mask (scores' shape and dtype) zeroing the ``floor(sparsity · n)`` *lowest* scores (no abs;
    ties by sort order). NaN scores count as lowest."""
    n = scores.numel()
    k = int(sparsity * n)
    mask = torch.ones(n, dtype=scores.dtype, device=scores.device)
    if k > 0:
        flat = torch.nan_to_num(scores.detach().flatten(), nan=-torch.inf)
        order = torch.argsort(flat, stable=True)
        mask[order[:k]] = 0
    return mask.view_as(scores)
