"""Activation capture: the inputs of one conv/linear layer over calibration batches, as Gram matrices.

The published code unfolds convolutions without their padding, stride, dilation or groups; here the
input is taken where the convolution itself sees it (after any padding the module adds in its own
``forward``) and unfolded with the module's padding (any ``padding_mode``, ``'same'``), stride and
dilation; groups give one Gram matrix per group. ``G`` is accumulated in float64 batch by batch
(GPTQ's ``add_batch``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pvq._progress import progress
from pvq.errors import PvqInputError
from pvq.layerwise._chunk_scale import check_scale_mode, chunk_grid_scale
from pvq.layerwise._problem import ChunkProblem, chunk_ranges
from pvq.layerwise._range import layer_scale

__all__ = ["GramAccumulator", "unfold_conv_input", "resolve_layer", "capture_grams", "capture_layer_problems"]


class _Stop(Exception):
    """Raised by the hook once the layer's input is captured: the rest of the forward pass is skipped."""


class GramAccumulator:
    """``add_batch(X)`` with ``X`` (groups, m, n): ``G += X^T X`` per group, in float64; ``.G`` (groups, n, n)."""

    def __init__(self, groups: int, n: int) -> None:
        self.G = np.zeros((groups, n, n), dtype=np.float64)
        self.samples = 0

    def add_batch(self, X: torch.Tensor, block: int = 8192) -> None:
        X = X.detach().to(torch.float64)
        for a in range(0, X.shape[1], block):
            xb = X[:, a : a + block]
            self.G += torch.bmm(xb.transpose(1, 2), xb).numpy()
        self.samples += int(X.shape[1])


def _same_pads(k: int, d: int) -> tuple[int, int]:
    total = d * (k - 1)
    return total // 2, total - total // 2


def unfold_conv_input(conv: nn.Conv2d | nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """Unfold the input ``x`` of ``conv`` as ``F.conv*d`` sees it into (groups, samples, in/groups * k).

    Columns are channel-major (``c, kh, kw``), matching ``conv.weight.reshape(out, -1)`` per group.
    """
    if isinstance(conv, nn.Conv1d):
        x = x.unsqueeze(-2)
        ks, st, dl = (1, conv.kernel_size[0]), (1, conv.stride[0]), (1, conv.dilation[0])
        pad = conv.padding if isinstance(conv.padding, str) else (0, conv.padding[0])
    else:
        ks, st, dl = tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.dilation)
        pad = conv.padding
    if isinstance(pad, str):
        if pad == "valid":
            pad = (0, 0)
        else:  # 'same' (stride 1): asymmetric when the receptive field is even
            (t, b), (l, r) = _same_pads(ks[0], dl[0]), _same_pads(ks[1], dl[1])
            mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
            x = F.pad(x, (l, r, t, b), mode=mode)
            pad = (0, 0)
    elif conv.padding_mode != "zeros" and any(pad):
        x = F.pad(x, (pad[1], pad[1], pad[0], pad[0]), mode=conv.padding_mode)
        pad = (0, 0)
    cols = F.unfold(x, ks, dilation=dl, padding=pad, stride=st)  # (B, C*kh*kw, L)
    B, CK, L = cols.shape
    g = conv.groups
    cols = cols.permute(0, 2, 1).reshape(B * L, g, CK // g)  # (samples, groups, n)
    return cols.permute(1, 0, 2)


def resolve_layer(model: nn.Module, name: str) -> tuple[str, nn.Module]:
    """Find the module ``name``; also accepts timm-style EfficientNet-Lite names (``blocks.1.1.conv_pw``)."""
    modules = dict(model.named_modules())
    if name in modules and name:
        return name, modules[name]
    try:
        from pvq.models import timm_name

        for cand in modules:
            if cand and timm_name(f"{cand}.weight") == f"{name}.weight":
                return cand, modules[cand]
    except Exception:  # timm_name does not apply to this model
        pass
    layers = [n for n, m in modules.items() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    hint = ", ".join(layers[:6]) + (", ..." if len(layers) > 6 else "")
    raise PvqInputError(f"--layer: no module named '{name}' (conv/linear layers include: {hint})")


def _run(model: nn.Module, batch: Any) -> None:
    if isinstance(batch, dict):
        model(**batch)
    elif isinstance(batch, (tuple, list)):
        model(*batch)
    else:
        model(batch)


def capture_grams(
    model: nn.Module, layer_name: str, batches: Iterable[Any]
) -> tuple[str, nn.Module, GramAccumulator]:
    """Forward ``batches`` through ``model`` and accumulate the Gram matrices of ``layer_name``'s inputs.

    Returns (resolved name, module, accumulator with ``G`` (groups, n, n)). Padded tokens (attention mask
    0 in a dict batch) are left out for linear layers.
    """
    name, mod = resolve_layer(model, layer_name)
    if not isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        raise PvqInputError(f"--layer: '{layer_name}' is a {type(mod).__name__}, not a conv or linear layer")
    acc: list[GramAccumulator] = []
    state: dict[str, Any] = {}

    def add(X: torch.Tensor) -> None:
        if not acc:
            acc.append(GramAccumulator(X.shape[0], X.shape[2]))
        acc[0].add_batch(X)

    if isinstance(mod, nn.Linear):

        def hook(_m: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0]
            mask = state.get("mask")
            if mask is not None and x.dim() == 3 and tuple(mask.shape) == tuple(x.shape[:2]):
                x = x[mask.bool()]
            add(x.reshape(1, -1, x.shape[-1]))
            raise _Stop

        handle = mod.register_forward_pre_hook(hook)
        restore = None
    else:
        original = mod._conv_forward

        def conv_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
            add(unfold_conv_input(mod, x))
            raise _Stop

        mod._conv_forward = conv_forward  # type: ignore[method-assign]
        handle = None
        restore = original
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in progress(list(batches), desc=f"capture {name}"):
                state["mask"] = batch.get("attention_mask") if isinstance(batch, dict) else None
                try:
                    _run(model, batch)
                except _Stop:
                    pass
    finally:
        if handle is not None:
            handle.remove()
        if restore is not None:
            del mod._conv_forward  # back to the class method
        model.train(was_training)
    if not acc:
        raise PvqInputError(f"--layer: '{name}' was never called on the calibration inputs")
    return name, mod, acc[0]


def capture_layer_problems(
    model: nn.Module,
    layer_name: str,
    batches: Iterable[Any],
    opt_dim: int | None = 32,
    bits: Sequence[int] = tuple(range(2, 9)),
    max_chunks: int | None = None,
    max_rows: int | None = None,
    seed: int = 0,
    scale: str = "tensor",
) -> list[ChunkProblem]:
    """Per-chunk problems of one layer: ``G`` from the calibration inputs, the dense rows, and the
    quantization scale at each of ``bits``: with ``scale='tensor'`` the layer's per-tensor MSE-optimal
    scale (:func:`layer_scale`), with ``scale='chunk-grid'`` the published per-chunk grid search on the
    chunk's weights, all rows of its group (:func:`pvq.layerwise._chunk_scale.chunk_grid_scale`).

    ``opt_dim``: chunk size in inputs (3x3 convs: whole channels, ``round(opt_dim / 9)`` of them); None or
    0 for whole rows. ``max_chunks``: keep that many chunks, evenly spread; ``max_rows``: a seeded random
    subset of output channels per chunk.
    """
    name, mod, acc = capture_grams(model, layer_name, batches)
    Wt = mod.weight.detach().to(torch.float64)
    out_ch = Wt.shape[0]
    W = Wt.reshape(out_ch, -1).numpy()  # (out, in/groups * k)
    groups = int(getattr(mod, "groups", 1))
    kernel_area = int(np.prod(mod.kernel_size)) if hasattr(mod, "kernel_size") else 1
    check_scale_mode(scale)
    tensor_scales = {int(b): layer_scale(W, int(b)) for b in bits} if scale == "tensor" else {}
    per_group = out_ch // groups
    specs: list[tuple[int, int, int]] = []  # (group, a, b)
    for g in range(groups):
        for a, b in chunk_ranges(W.shape[1], opt_dim, kernel_area):
            specs.append((g, a, b))
    if max_chunks is not None and max_chunks < len(specs):
        pick = np.unique(np.linspace(0, len(specs) - 1, max(1, max_chunks)).round().astype(int))
        specs = [specs[i] for i in pick]
    rng = np.random.default_rng(seed)
    problems = []
    for idx, (g, a, b) in enumerate(specs):
        rows = np.arange(g * per_group, (g + 1) * per_group)
        if max_rows is not None and max_rows < rows.size:
            rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
        G = acc.G[g, a:b, a:b].copy()
        if scale == "tensor":
            scales = tensor_scales
        else:  # the published code slices every row of the chunk (its group) before its grid search
            group_w = W[g * per_group : (g + 1) * per_group, a:b]
            scales = {int(bb): chunk_grid_scale(group_w, int(bb)) for bb in bits}
        problems.append(
            ChunkProblem(
                layer=name,
                chunk=idx,
                G=G,
                W=W[rows, a:b].copy(),
                scales=scales,
                inputs=np.arange(a, b),
                row_ids=rows,
                samples=acc.samples,
            )
        )
    return problems
