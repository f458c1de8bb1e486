"""``pvq apply SOURCE``: a runnable model from a source — a bundled model, or a ``.pt``/``.pth`` file holding a
whole pickled ``nn.Module`` (``torch.save(model)``). Weight-only sources (state dicts, safetensors, ONNX, GGUF,
folders) carry no architecture to run, so they cannot be calibrated or rebuilt: the error says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from pvq.errors import PvqInputError

__all__ = ["ModelSource", "load_model_source"]


@dataclass(frozen=True, eq=False)
class ModelSource:
    """``module`` in eval mode; ``bundled`` its bundled name (``None`` for a user's module); ``modality``
    ``image``/``text`` when known; ``path`` the file it came from (a user's module)."""

    module: nn.Module
    label: str
    bundled: str | None = None
    modality: str | None = None
    path: Path | None = None


def load_model_source(source: str) -> ModelSource:
    """The runnable model ``source`` names (see the module docstring); PvqInputError otherwise."""
    from pvq.compare._layers_stage import bundled_name_of

    name = bundled_name_of(source)
    if name is not None:
        from pvq.models import create_model, input_spec

        return ModelSource(create_model(name), name, name, input_spec(name).modality, None)
    p = Path(source).expanduser()
    if not p.exists():
        from pvq.models import bundled_names

        raise PvqInputError(f"{source}: not found (and not a bundled model: {', '.join(bundled_names())})")
    no_arch = (
        f"{source}: holds weights only, with no architecture pvq can run; use a bundled model, a .pt file "
        "saved with torch.save(model) (the whole module), or the Python API pvq.apply(model, recipe)"
    )
    if p.is_dir() or p.suffix.lower() not in (".pt", ".pth"):
        raise PvqInputError(no_arch)
    import torch

    try:
        obj: Any = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:
        obj = None
    if obj is not None:  # a state dict (tensors only)
        raise PvqInputError(no_arch)
    # A whole pickled module needs full unpickling, which can run code from the file: only for files the
    # user trusts, as with torch.load itself. Its classes must be importable here.
    try:
        obj = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PvqInputError(f"{source}: cannot load ({type(exc).__name__}: {msg})") from None
    if not isinstance(obj, nn.Module):
        raise PvqInputError(no_arch)
    return ModelSource(obj.eval(), p.name, path=p)
