"""N:M semi-structured masks (2:4, 4:8) on the pruning-mask parametrization.

Groups are ``M`` consecutive inputs of each output row of the weight read as ``(out, prod(shape[1:]))`` —
the convention of pvq's recipes (``2:4:magnitude``) and of ``pvq.formats.nm_mask``. In every group the
``N`` highest-importance weights are kept. The mask is a buffer, so fine-tuning (which only updates the
parametrization's ``original``) keeps the pattern; a layer whose row length is not a multiple of ``M``
(e.g. a 1-channel 3x3 stem conv: 9 inputs) is left dense and reported.
"""

from __future__ import annotations

import torch
from torch import nn

from pvq.training._prune import mask_modules

__all__ = ["parse_nm", "nm_keep_mask", "set_nm_masks", "nm_pattern_ok"]


def parse_nm(text: str) -> tuple[int, int]:
    """``"2:4"`` -> (2, 4); ValueError naming the value unless ``0 < N < M``."""
    try:
        n_s, m_s = str(text).split(":")
        n, m = int(n_s), int(m_s)
    except ValueError:
        raise ValueError(f"nm must be 'N:M' with integers, e.g. '2:4', got {text!r}") from None
    if not 0 < n < m:
        raise ValueError(f"nm must have 0 < N < M, got {text!r}")
    return n, m


@torch.no_grad()
def set_nm_masks(model: nn.Module, n: int, m: int, scores: dict[str, torch.Tensor] | None = None) -> list[str]:
    """Set every mask to the N:M pattern of the layer's importance (``|w|`` without ``scores``).

    Returns the names of the layers left dense (row length not a multiple of ``m``); their masks are all ones.
    """
    dense = []
    for name, mod, p in mask_modules(model):
        w = mod.parametrizations["weight"].original * p.mask
        sc = w.abs() if scores is None else scores[name].detach().to(w.device)
        keep = nm_keep_mask(sc, n, m)
        if keep is None:
            p.mask.fill_(1.0)
            dense.append(name)
        else:
            p.mask.copy_(keep.to(p.mask.dtype))
    return dense


# ---------------------------------------------------------------- pure numeric functions


def nm_keep_mask(scores: torch.Tensor, n: int, m: int) -> torch.Tensor | None:
    """Bool keep-mask of scores' shape with the ``n`` highest scores of every ``m`` consecutive row inputs.

    ``scores``: (out, ...) read as (out, cols). Ties keep the earlier input. None when cols % m != 0.
    """
    rows = scores.shape[0] if scores.dim() > 1 else 1
    flat = scores.reshape(rows, -1)
    if flat.shape[1] % m:
        return None
    groups = torch.nan_to_num(flat.double(), nan=-torch.inf).reshape(rows, -1, m)  # (rows, G, M)
    order = torch.argsort(-groups, dim=-1, stable=True)  # highest first, earlier index on ties
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(-1, order[..., :n], True)
    return keep.reshape(scores.shape)


def nm_pattern_ok(w: torch.Tensor, n: int, m: int) -> bool:
    """True when every group of ``m`` consecutive row inputs of ``w`` has at most ``n`` non-zeros."""
    rows = w.shape[0] if w.dim() > 1 else 1
    flat = w.reshape(rows, -1)
    if flat.shape[1] % m:
        return False
    return bool(((flat.reshape(rows, -1, m) != 0).sum(-1) <= n).all())
