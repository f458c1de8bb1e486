"""The layer-wise (output error) sample of a compare run: a few layers, a few chunks, exact solvers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["run_layer_sample"]


def run_layer_sample(cfg: Any, ws: Any, part: Path, log: Any) -> tuple[list[dict[str, Any]], str]:
    """Rows (DESIGN.md layer keys) and a one-line note on what was done or why it was skipped."""
    from pvq.models._registry import bundled_names

    if cfg.source not in bundled_names():
        return [], (
            f"skipped: {cfg.source} is a weights file without an architecture pvq knows, so no layer inputs can be "
            "captured (calibration skipped); the per-tensor comparison above does not need them."
        )
    try:
        from pvq.layerwise import capture_layer_problems  # noqa: F401
    except ImportError:
        return [], "skipped: the layer-wise solvers (pvq.layerwise) are not available in this installation."
    return [], "skipped: not wired yet."
