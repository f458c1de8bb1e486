"""Pruning criteria: per-weight importance scores from data (lower score = pruned first).

Every criterion scores the *effective* weight ``w`` of each masked (else each compressible) layer of a
model; gradients are taken with respect to that effective weight on a few training batches, with the
model in eval mode (BN uses its running statistics and is not updated by scoring):

* ``magnitude``: ``|w|``;
* ``snip`` (Lee et al. 2019, connection sensitivity): ``|g ⊙ w|`` with ``g = ∂L/∂w`` the mean-loss gradient;
* ``grasp`` (Wang et al. 2020, gradient-signal preservation): GraSP's score is ``S = −w ⊙ Hg`` and it
  removes the weights with the *largest* S; pvq's importance is therefore ``w ⊙ Hg`` (``H`` the loss
  Hessian, ``Hg`` by double backpropagation of ``gᵀ stopgrad(g)``; GraSP's logit temperature is not used);
* ``fisher`` (OBD-style second-order saliency, LeCun et al. 1990, with the empirical Fisher as the Hessian
  diagonal): ``½ F_ii w_i²`` with ``F_ii = mean_n (∂ℓ_n/∂w_i)²`` over per-example gradients.

Scores are ranked within each layer (uniform per-tensor sparsity, the equal-compression setting).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from pvq.training._lsq import compressible_layers
from pvq.training._prune import mask_modules

__all__ = ["CRITERIA", "saliency", "snip_scores", "grasp_scores", "fisher_scores"]

CRITERIA = ("magnitude", "snip", "grasp", "fisher")

Batch = tuple[torch.Tensor, torch.Tensor]


def _scored_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    masked = [(n, m) for n, m, _ in mask_modules(model)]
    return masked or compressible_layers(model)


def saliency(
    model: nn.Module, criterion: str, batches: Iterable[Batch], device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Importance of every weight of the scored layers: ``{layer name: tensor of the weight's shape}``.

    ``batches``: (inputs (B, ...), int labels (B,)) pairs; the loss is cross-entropy averaged over all
    examples. ``criterion`` in :data:`CRITERIA`. The model's train/eval mode is restored afterwards.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    layers = _scored_layers(model)
    if criterion == "magnitude":
        with torch.no_grad():
            return {n: m.weight.detach().abs().clone() for n, m in layers}
    data = [(x.to(device), y.to(device)) for x, y in batches]
    if not data:
        raise ValueError("saliency: no batches to score on")
    was = model.training
    model.eval()
    try:
        if criterion == "fisher":
            return _fisher(model, layers, data)
        with parametrize.cached():  # mod.weight is computed once, so gradients w.r.t. it can be taken
            ws = [m.weight for _, m in layers]
            n_total = sum(int(y.numel()) for _, y in data)
            loss = sum(nn.functional.cross_entropy(model(x), y, reduction="sum") for x, y in data) / n_total
            if criterion == "snip":
                gs = torch.autograd.grad(loss, ws)
                return {n: snip_scores(w.detach(), g) for (n, _), w, g in zip(layers, ws, gs, strict=True)}
            # grasp: g without a graph, then Hg = ∂(g_graphᵀ g)/∂w on the same data
            gs = torch.autograd.grad(loss, ws, retain_graph=True)
            g_graph = torch.autograd.grad(loss, ws, create_graph=True)
            z = sum((a * b.detach()).sum() for a, b in zip(g_graph, gs, strict=True))
            hgs = torch.autograd.grad(z, ws)
            return {n: grasp_scores(w.detach(), hg) for (n, _), w, hg in zip(layers, ws, hgs, strict=True)}
    finally:
        model.train(was)


def _fisher(model: nn.Module, layers: list[tuple[str, nn.Module]], data: list[Batch]) -> dict[str, torch.Tensor]:
    """Empirical-Fisher diagonal from per-example gradients (one backward per example: exact, not the
    squared mini-batch gradient, which would underestimate F by the cross-example cancellations)."""
    sq = [torch.zeros_like(m.weight) for _, m in layers]
    n = 0
    with parametrize.cached():
        ws = [m.weight for _, m in layers]
        for x, y in data:
            for i in range(int(y.numel())):
                loss = nn.functional.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
                for acc, g in zip(sq, torch.autograd.grad(loss, ws), strict=True):
                    acc += g.detach() ** 2
                n += 1
        return {name: fisher_scores(w.detach(), acc / n) for (name, _), w, acc in zip(layers, ws, sq, strict=True)}


# ---------------------------------------------------------------- pure numeric functions


def snip_scores(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """SNIP connection sensitivity ``|g ⊙ w|`` (any shape, g = ∂L/∂w of w's shape)."""
    return (g * w).abs()


def grasp_scores(w: torch.Tensor, hg: torch.Tensor) -> torch.Tensor:
    """GraSP importance ``w ⊙ Hg`` = −S of Wang et al. (eq. 8); the lowest is pruned first."""
    return w * hg


def fisher_scores(w: torch.Tensor, fisher_diag: torch.Tensor) -> torch.Tensor:
    """OBD saliency ``½ F_ii w_i²`` with ``F_ii`` the (empirical-Fisher) Hessian diagonal of w's shape."""
    return 0.5 * fisher_diag * w**2
