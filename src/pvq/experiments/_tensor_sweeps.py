"""Shared by the fig3 and table2 reproductions: pvq's own per-tensor sweep of the bundled models,
cached under ``OUT/_tensors/`` (resumable, shared between the two reproductions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pvq.experiments import ReproduceConfig

__all__ = ["bundled_sweeps", "models_for_preset"]

ALL_MODELS = ("mobilenet_v2", "efficientnet_lite0", "minilm", "smollm2")


def models_for_preset(preset: str) -> tuple[str, ...]:
    """smoke: MobileNetV2 only (seconds); cpu/gpu: every bundled model."""
    return ("mobilenet_v2",) if preset == "smoke" else ALL_MODELS


def bundled_sweeps(
    cfg: ReproduceConfig, range_search: str = "grid", models: tuple[str, ...] | None = None
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Rows of pvq's sweep (2-8 bits) per installed bundled model, and notes (models skipped, caveats)."""
    from pvq.errors import PvqInputError
    from pvq.models import list_bundled, load_weights
    from pvq.tensors import sweep

    installed = {b.name: b for b in list_bundled() if b.installed}
    cache = Path(cfg.out) / "_tensors"
    out: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    for name in models or models_for_preset(cfg.preset):
        if name not in installed:
            notes.append(f"{name}: not installed, skipped")
            continue
        try:
            ws = load_weights(name)
        except PvqInputError as exc:
            notes.append(f"{name}: could not be loaded ({exc}), skipped")
            continue
        res = sweep(
            ws,
            bits=range(2, 9),
            range_search=range_search,
            resume_path=cache / f"{name}_{range_search}.jsonl",
        )
        out[name] = [{"source": "pvq", "model": name, **r} for r in res.rows()]
        notes += [f"{name}: {n}" for n in res.notes]
    return out, notes
