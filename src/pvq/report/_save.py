"""Write a matplotlib figure as PNG and SVG (every figure pvq draws goes through here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["save_png_svg"]


def save_png_svg(fig: Any, out_dir: Path, stem: str, dpi: int = 150) -> list[Path]:
    """Write ``fig`` to ``out_dir/stem.png`` (``dpi``) and ``out_dir/stem.svg``, close it, return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    for p in paths:
        fig.savefig(p, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return paths
