"""Fig. 4's heavy-tailed layers, chosen by a rule: the conv/linear weight tensors of highest Pearson
kurtosis among those whose row problems fit the exact solvers (chunk width at most ``max_n`` inputs).

The paper's Fig. 4 includes ResNet-18 layers where pruning competes with quantization; the theory
(§3) ties that to heavy tails. pvq's bundled models have such tensors (kurtosis up to ~22 in
EfficientNet-Lite0's depthwise convs, ~1,600 in MiniLM's FFN output projections).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np

from pvq.layerwise._problem import chunk_ranges

__all__ = ["HeavyLayer", "unit_width", "rank_heavy_tailed", "heavy_tailed_layers"]


@dataclass(frozen=True)
class HeavyLayer:
    """One candidate: bundled ``model``, module ``layer``, Pearson ``kurtosis``, weight ``shape`` and
    ``width`` (inputs of one row problem: a chunk, or a whole depthwise row)."""

    model: str
    layer: str
    kurtosis: float
    shape: tuple[int, ...]
    width: int


def unit_width(shape: tuple[int, ...], opt_dim: int) -> int:
    """Inputs of one row problem of a weight of ``shape`` ((out, in) linear, (out, in/g, kh, kw) conv)
    split into ``opt_dim`` chunks as :func:`pvq.layerwise.capture_layer_problems` splits it."""
    area = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    row = int(np.prod(shape[1:]))
    a, b = chunk_ranges(row, opt_dim, area)[0]
    return b - a


def rank_heavy_tailed(
    candidates: Iterable[HeavyLayer], n: int, exclude: Collection[str] = (), max_n: int = 36
) -> list[HeavyLayer]:
    """The ``n`` candidates of highest kurtosis with ``width <= max_n``, not in ``exclude`` (layer
    names), ordered by kurtosis (highest first); NaN kurtosis never qualifies."""
    ok = [c for c in candidates if c.width <= max_n and c.layer not in exclude and np.isfinite(c.kurtosis)]
    return sorted(ok, key=lambda c: (-c.kurtosis, c.model, c.layer))[: max(0, n)]


def heavy_tailed_layers(
    models: dict[str, int], n: int, exclude: Collection[str] = (), max_n: int = 36
) -> list[HeavyLayer]:
    """:func:`rank_heavy_tailed` over every conv/linear tensor of the bundled ``models`` (name ->
    opt_dim), kurtosis from :func:`pvq.tensors.kurtosis` on the float32 weights."""
    from pvq.models import timm_name
    from pvq.models._registry import load_bundled_weights
    from pvq.tensors import kurtosis

    cands = []
    for model, opt_dim in models.items():
        ws = load_bundled_weights(model)
        for name in ws:
            info = ws.info(name)
            if info.kind not in ("conv", "linear") or not name.endswith(".weight") or len(info.shape) < 2:
                continue
            layer = name[: -len(".weight")]
            if timm_name(name)[: -len(".weight")] in exclude:  # Fig. 4 names EfficientNet layers timm's way
                continue
            k = kurtosis(ws[name].detach().cpu().numpy())
            cands.append(
                HeavyLayer(model, layer, float(k), tuple(info.shape), unit_width(info.shape, opt_dim))
            )
    return rank_heavy_tailed(cands, n, exclude, max_n)
