"""Write a matplotlib figure as PNG and SVG (every figure pvq draws goes through here)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["save_png_svg"]


def _save_atomic(fig: Any, path: Path, dpi: int) -> None:
    """``fig.savefig`` into a temp file of the same folder, then rename over ``path``: a run killed
    while drawing never leaves a half-written figure or one that mixes two runs under a final name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format=path.suffix.lstrip("."), dpi=dpi, bbox_inches="tight")
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; a figure is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_png_svg(fig: Any, out_dir: Path, stem: str, dpi: int = 150) -> list[Path]:
    """Write ``fig`` to ``out_dir/stem.png`` (``dpi``) and ``out_dir/stem.svg`` (each atomically), close
    it, return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    try:
        for p in paths:
            _save_atomic(fig, p, dpi)
    finally:
        plt.close(fig)
    return paths
