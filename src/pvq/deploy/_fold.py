"""Batch-norm folding: ``Conv -> BatchNorm`` pairs become one conv with rescaled weights and a bias.

For a conv ``y = W * x + b`` followed by ``BN(y) = g (y - mu) / sqrt(var + eps) + beta`` (eval mode, running
statistics), the folded conv has ``W' = W * s`` per output channel and ``b' = (b - mu) * s + beta`` with
``s = g / sqrt(var + eps)``. torch ships the same arithmetic (``torch.nn.utils.fusion.fuse_conv_bn_weights``),
which is used here; what pvq adds is finding the pairs in any module: a BN whose input is the output of a conv
used by nothing else (found on a ``torch.fx`` trace, or, where tracing fails, as consecutive siblings in an
``nn.Sequential``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["FoldReport", "fold_batchnorm"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass(frozen=True)
class FoldReport:
    """``pairs``: (conv name, bn name) folded; ``unfolded``: BN layers left alone (no conv feeds only them)."""

    pairs: tuple[tuple[str, str], ...]
    unfolded: tuple[str, ...]


def _pairs_fx(model: nn.Module) -> list[tuple[str, str]] | None:
    """(conv, bn) pairs from a torch.fx trace, or None when the model does not trace."""
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception:
        return None
    mods = dict(model.named_modules())
    out = []
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(mods.get(node.target), _BNS):
            continue
        src = node.args[0] if node.args else None
        if (
            isinstance(src, torch.fx.Node)
            and src.op == "call_module"
            and isinstance(mods.get(src.target), _CONVS)
            and len(src.users) == 1
        ):
            out.append((str(src.target), str(node.target)))
    return out


def _pairs_sequential(model: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) pairs that are consecutive children of an ``nn.Sequential``."""
    out = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Sequential):
            continue
        kids = list(mod.named_children())
        for (a, ma), (b, mb) in zip(kids, kids[1:], strict=False):
            if isinstance(ma, _CONVS) and isinstance(mb, _BNS):
                pre = f"{name}." if name else ""
                out.append((pre + a, pre + b))
    return out


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, FoldReport]:
    """A copy of ``model`` (eval mode) with every foldable ``Conv -> BatchNorm`` pair folded into the conv and
    the BN replaced by ``nn.Identity``; the original is untouched. Outputs equal the original's up to float
    rounding (the tests bound it)."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    out = copy.deepcopy(model).eval()
    bns = [n for n, m in out.named_modules() if isinstance(m, _BNS)]
    if not bns:
        return out, FoldReport((), ())
    pairs = _pairs_fx(out)
    if pairs is None:
        pairs = _pairs_sequential(out)
    for conv_name, bn_name in pairs:
        conv, bn = out.get_submodule(conv_name), out.get_submodule(bn_name)
        if bn.running_mean is None or bn.running_var is None:
            continue
        w, b = fuse_conv_bn_weights(
            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
        )
        conv.weight = w
        conv.bias = b
        _set(out, bn_name, nn.Identity())
    done = {b for _, b in pairs}
    left = tuple(n for n in bns if n not in done or isinstance(out.get_submodule(n), _BNS))
    return out, FoldReport(tuple(p for p in pairs if p[1] not in left), left)
