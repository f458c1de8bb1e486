"""What every paper reproduction takes and returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["ReproduceConfig", "Result", "SimpleResult", "PRESETS"]

PRESETS = ("smoke", "cpu", "gpu")


@dataclass(frozen=True)
class ReproduceConfig:
    """Configuration shared by every reproduction. ``preset`` sizes the work: smoke (seconds, tests),
    cpu (this 2-core machine), gpu (needs ``device='cuda'``)."""

    preset: str = "smoke"
    out: Path = Path("out")
    seed: int = 0
    device: str = "cpu"
    resume: bool = True
    scale: str = "tensor"  # fig4: quantization scale, tensor (per-tensor MSE) | chunk-grid (published)
    whole_rows: bool = False  # fig4: add the panel of chunked vs whole-row optima

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}, got {self.preset!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device!r}")
        if self.scale not in ("tensor", "chunk-grid"):
            raise ValueError(f"scale must be tensor or chunk-grid, got {self.scale!r}")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        if not self.whole_rows:  # recorded only when set: configs written before it stay the same
            del d["whole_rows"]
        return d


class Result(Protocol):
    """A reproduction's result: rows of numbers, metadata, and figures drawn on request."""

    name: str

    def rows(self) -> list[dict[str, Any]]: ...

    def to_json(self) -> dict[str, Any]: ...

    def plot(self, out_dir: Path) -> list[Path]:
        """Draw the figures (PNG and SVG) into ``out_dir``; return the paths written."""
        ...


@dataclass
class SimpleResult:
    """A ready Result: rows + notes + an optional plotting function ``plotter(result, out_dir)``."""

    name: str
    row_list: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)  # what differs from the paper (models, data, preset)
    meta: dict[str, Any] = field(default_factory=dict)
    plotter: Any = None

    def rows(self) -> list[dict[str, Any]]:
        return self.row_list

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "notes": self.notes, "meta": self.meta, "rows": self.row_list}

    def plot(self, out_dir: Path) -> list[Path]:
        if self.plotter is None:
            return []
        return list(self.plotter(self, Path(out_dir)))
