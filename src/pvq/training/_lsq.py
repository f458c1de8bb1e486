"""LSQ fake quantization of weights (Esser et al. 2020, "Learned Step Size Quantization") as a parametrization.

The effective weight of every wrapped conv/linear layer is ``ŵ = s · round(clip(w / s, Q_N, Q_P))`` on the
symmetric signed b-bit grid of DESIGN.md (Q_N = −2^(b−1), Q_P = 2^(b−1) − 1), per tensor. Gradients:

* weights: straight-through, ``∂ŵ/∂w = 1`` inside the clipping range and 0 outside;
* scale (LSQ eq. 3): ``∂ŵ/∂s = round(w/s) − w/s`` inside, ``Q_N`` below, ``Q_P`` above, times the gradient
  scale ``g = 1 / sqrt(N · Q_P)`` (N = number of weights in the tensor; LSQ §2.2).

Scales are initialised by an MSE range search (``mse_scale``) and are trained by their own optimizer
(``lsq_scale_parameters`` lists them). ``export_quantized`` returns plain integer weights and scales.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from pvq.formats import IntGrid

__all__ = [
    "LsqWeight",
    "lsq_fake_quant",
    "mse_scale",
    "add_lsq",
    "lsq_modules",
    "lsq_scale_parameters",
    "export_quantized",
    "compressible_layers",
    "parametrized_modules",
]

P = TypeVar("P", bound=nn.Module)


def compressible_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs whose ``weight`` pvq compresses: every Conv1d/2d/3d and Linear."""
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, kinds)]


def parametrized_modules(model: nn.Module, kind: type[P]) -> Iterator[tuple[str, nn.Module, P]]:
    """(layer name, layer, parametrization) for every layer whose ``weight`` carries a ``kind`` parametrization."""
    for name, mod in model.named_modules():
        if parametrize.is_parametrized(mod, "weight"):
            for p in mod.parametrizations["weight"]:
                if isinstance(p, kind):
                    yield name, mod, p


class LsqWeight(nn.Module):
    """Parametrization ``w -> s · round(clip(w/s, Q_N, Q_P))`` with a learnable per-tensor scale ``s``."""

    def __init__(self, bits: int, scale: float, numel: int) -> None:
        super().__init__()
        grid = IntGrid(bits, signed=True)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"LSQ scale must be positive and finite, got {scale}")
        self.bits = int(bits)
        self.qmin, self.qmax = grid.qmin, grid.qmax
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.grad_scale = 1.0 / math.sqrt(numel * self.qmax)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return lsq_fake_quant(w, self.scale, self.qmin, self.qmax, self.grad_scale)

    def integers(self, w: torch.Tensor) -> torch.Tensor:
        """The integer codes ``round(clip(w/s))`` (int32), same shape as ``w``."""
        s = self.scale.detach().abs()
        return torch.clamp(torch.round(w.detach() / s), self.qmin, self.qmax).to(torch.int32)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, qmin={self.qmin}, qmax={self.qmax}"


def add_lsq(model: nn.Module, bits: int, layers: list[str] | None = None) -> list[str]:
    """Register an ``LsqWeight`` on the weight of each compressible layer (or of ``layers``).

    The scale starts at the MSE-optimal value of ``mse_scale`` on the current (possibly already
    parametrized, e.g. masked) weight. Returns the names of the layers that were wrapped.
    """
    names = []
    for name, mod in compressible_layers(model):
        if layers is not None and name not in layers:
            continue
        with torch.no_grad():
            w = mod.weight.detach()
        scale = mse_scale(w, bits)
        parametrize.register_parametrization(mod, "weight", LsqWeight(bits, scale, w.numel()).to(w.device))
        names.append(name)
    return names


def lsq_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module, LsqWeight]]:
    """(layer name, layer, its LsqWeight) for every LSQ-parametrized layer."""
    return parametrized_modules(model, LsqWeight)


def lsq_scale_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The learnable LSQ scales (for their own optimizer, Adam 1e-5 in the paper)."""
    return [p.scale for _, _, p in lsq_modules(model)]


@torch.no_grad()
def export_quantized(model: nn.Module) -> dict[str, dict[str, torch.Tensor | float | int]]:
    """Plain integer weights and scales: ``{layer: {"int": int32 tensor, "scale": float, "bits": int}}``.

    ``int * scale`` equals the layer's effective weight exactly (pruning masks, if any, were applied
    before quantization, so pruned weights export as integer 0).
    """
    out: dict[str, dict[str, torch.Tensor | float | int]] = {}
    for name, mod, p in lsq_modules(model):
        # Input of the LSQ step = the original weight passed through the parametrizations before it.
        w = mod.parametrizations["weight"].original
        for q in mod.parametrizations["weight"]:
            if q is p:
                break
            w = q(w)
        out[name] = {"int": p.integers(w), "scale": float(p.scale.abs()), "bits": p.bits}
    return out


# ---------------------------------------------------------------- pure numeric functions


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


def lsq_fake_quant(w: torch.Tensor, scale: torch.Tensor, qmin: int, qmax: int, grad_scale: float) -> torch.Tensor:
    """``s · round(clip(w/s, qmin, qmax))`` with LSQ's gradients (module docstring). ``w``: any shape; ``scale``: 0-d."""
    # Gradient scaling: forward value s, backward gradient multiplied by g (LSQ's grad_scale trick).
    s = (scale - scale * grad_scale).detach() + scale * grad_scale
    v = torch.clamp(w / s, qmin, qmax)  # clamp passes no gradient outside [qmin, qmax]
    return _RoundSTE.apply(v) * s


@torch.no_grad()
def mse_scale(w: torch.Tensor, bits: int) -> float:
    """Per-tensor scale minimising ``||w − s·round(clip(w/s))||²`` on the b-bit symmetric grid.

    The global optimum (certified branch and bound over the scale axis, :func:`pvq.tensors.optimal_scale`,
    the one search every pvq caller uses; near-optimal only if it stops at its node cap). ``w``: any
    shape, finite. An all-zero tensor gives 1.0 (any scale quantizes it exactly).
    """
    from pvq.tensors import SortedTensor, int_levels, optimal_scale

    w = w.detach().float().flatten().cpu()
    if w.numel() == 0 or not torch.isfinite(w).all():
        raise ValueError("mse_scale: weight tensor is empty or not finite")
    IntGrid(bits, signed=True)  # validates bits
    res = optimal_scale(SortedTensor.from_tensor(w), int_levels(int(bits)))
    return float(res.scale) if res.scale > 0 else 1.0
