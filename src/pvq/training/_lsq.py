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
from pvq.training._affine import mse_affine

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
    "mse_affine",
    "first_last",
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
    """Parametrization ``w -> s · round(clip(w/s, Q_N, Q_P))`` with a learnable scale ``s``.

    ``scale``: a float (per tensor) or a tensor of shape (out,) (per output channel; stored as
    (out, 1, ...) to broadcast over w). ``asymmetric``: LSQ+ (Bhalgat et al. 2020) — an unsigned grid
    {0..2^b − 1} and a learnable offset β of the scale's shape, ``w -> s · round(clip((w − β)/s)) + β``;
    β's gradient is 1 where w is clipped and 0 inside, both scaled by the LSQ gradient scale.
    ``numel`` is the number of weights sharing one scale (for ``g = 1 / sqrt(numel · Q_P)``).
    """

    def __init__(self, bits: int, scale: float | torch.Tensor, numel: int, *, asymmetric: bool = False,
                 offset: float | torch.Tensor | None = None, ndim: int = 0) -> None:
        super().__init__()
        grid = IntGrid(bits, signed=not asymmetric)
        s = torch.as_tensor(scale, dtype=torch.float32).detach().clone()
        if s.numel() == 0 or not (torch.isfinite(s).all() and (s > 0).all()):
            raise ValueError(f"LSQ scale must be positive and finite, got {scale}")
        if s.dim() == 1:  # per channel: (out,) -> (out, 1, ..., 1) for a weight of ``ndim`` dims
            s = s.reshape(-1, *([1] * max(ndim - 1, 0)))
        self.bits = int(bits)
        self.asymmetric = bool(asymmetric)
        self.qmin, self.qmax = grid.qmin, grid.qmax
        self.scale = nn.Parameter(s)
        self.offset: nn.Parameter | None = None
        if asymmetric:
            b = torch.zeros_like(s) if offset is None else torch.as_tensor(offset, dtype=torch.float32).reshape(s.shape)
            self.offset = nn.Parameter(b.detach().clone())
        self.grad_scale = 1.0 / math.sqrt(numel * self.qmax)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.offset is None:
            return lsq_fake_quant(w, self.scale, self.qmin, self.qmax, self.grad_scale)
        g = self.grad_scale
        beta = (self.offset - self.offset * g).detach() + self.offset * g  # value β, gradient × g
        return lsq_fake_quant(w - beta, self.scale, self.qmin, self.qmax, g) + beta

    def integers(self, w: torch.Tensor) -> torch.Tensor:
        """The integer codes ``round(clip((w − β)/s))`` (int32), same shape as ``w`` (β = 0 if symmetric)."""
        s = self.scale.detach().abs()
        v = w.detach() if self.offset is None else w.detach() - self.offset.detach()
        return torch.clamp(torch.round(v / s), self.qmin, self.qmax).to(torch.int32)

    def extra_repr(self) -> str:
        per = "channel" if self.scale.dim() > 0 else "tensor"
        return f"bits={self.bits}, qmin={self.qmin}, qmax={self.qmax}, per={per}, asymmetric={self.asymmetric}"


def add_lsq(model: nn.Module, bits: int, layers: list[str] | None = None, *, per_channel: bool = False,
            asymmetric: bool = False, bits_for: dict[str, int] | None = None) -> list[str]:
    """Register an ``LsqWeight`` on the weight of each compressible layer (or of ``layers``).

    The scale starts at the MSE-optimal value of ``mse_scale`` on the current (possibly already
    parametrized, e.g. masked) weight — per output channel with ``per_channel``; ``asymmetric`` starts
    scale and offset at ``mse_affine``'s range. ``bits_for`` overrides the bit-width of named layers
    (e.g. first and last at 8, ``first_last``). Returns the names of the layers that were wrapped.
    """
    names = []
    for name, mod in compressible_layers(model):
        if layers is not None and name not in layers:
            continue
        b = int((bits_for or {}).get(name, bits))
        with torch.no_grad():
            w = mod.weight.detach()
        rows = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
        if asymmetric:
            pairs = [mse_affine(r, b) for r in rows]
            scale = torch.tensor([p[0] for p in pairs])
            offset = torch.tensor([p[1] for p in pairs])
        else:
            scale, offset = torch.tensor([mse_scale(r, b) for r in rows]), None
        if not per_channel:
            scale = scale.reshape(())
            offset = None if offset is None else offset.reshape(())
        q = LsqWeight(b, scale, rows.shape[1], asymmetric=asymmetric, offset=offset, ndim=w.dim())
        parametrize.register_parametrization(mod, "weight", q.to(w.device))
        names.append(name)
    return names


def first_last(model: nn.Module, bits: int = 8) -> dict[str, int]:
    """``{first layer: bits, last layer: bits}`` over ``compressible_layers`` order (for ``bits_for``)."""
    layers = compressible_layers(model)
    return {layers[0][0]: bits, layers[-1][0]: bits} if layers else {}


def lsq_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module, LsqWeight]]:
    """(layer name, layer, its LsqWeight) for every LSQ-parametrized layer."""
    return parametrized_modules(model, LsqWeight)


def lsq_scale_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The learnable LSQ scales, and offsets of asymmetric ones (their own optimizer, Adam 1e-5 in the paper)."""
    out = []
    for _, _, p in lsq_modules(model):
        out.append(p.scale)
        if p.offset is not None:
            out.append(p.offset)
    return out


@torch.no_grad()
def export_quantized(model: nn.Module) -> dict[str, dict[str, torch.Tensor | float | int]]:
    """Plain integer weights and scales: ``{layer: {"int": int32 tensor, "scale": float, "bits": int}}``.

    ``int * scale`` equals the layer's effective weight exactly (pruning masks, if any, were applied
    before quantization, so pruned weights export as integer 0). Per-channel scales export as a tensor
    of shape (out, 1, ...); asymmetric layers add ``"offset"`` (same form) with ``int * scale + offset``.
    """
    out: dict[str, dict[str, torch.Tensor | float | int]] = {}
    for name, mod, p in lsq_modules(model):
        # Input of the LSQ step = the original weight passed through the parametrizations before it.
        w = mod.parametrizations["weight"].original
        for q in mod.parametrizations["weight"]:
            if q is p:
                break
            w = q(w)
        sc = p.scale.detach().abs()
        out[name] = {"int": p.integers(w), "scale": float(sc) if sc.dim() == 0 else sc.clone(), "bits": p.bits}
        if p.offset is not None:
            off = p.offset.detach()
            out[name]["offset"] = float(off) if off.dim() == 0 else off.clone()
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
