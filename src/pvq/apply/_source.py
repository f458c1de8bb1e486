"""``pvq apply SOURCE``: a runnable model from a source — a bundled model, or a state dict (safetensors or a
``.pt``/``.pth`` read with ``weights_only=True``) plus ``--arch package.module:factory``, the user's own code that
builds the architecture. pvq never unpickles whole modules (that would run arbitrary code from a file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from pvq.errors import PvqInputError

__all__ = ["ModelSource", "build_arch", "load_model_source"]


@dataclass(frozen=True, eq=False)
class ModelSource:
    """``module`` in eval mode; ``bundled`` its bundled name (``None`` for a user's module); ``modality``
    ``image``/``text`` when known; ``path`` the file it came from (a user's module)."""

    module: nn.Module
    label: str
    bundled: str | None = None
    modality: str | None = None
    path: Path | None = None


def build_arch(arch: str) -> nn.Module:
    """The module ``package.module:factory`` builds (``factory()`` called with no arguments). Importing the
    user's own module runs its code, as any Python import does; the current folder is searched first."""
    import importlib
    import sys

    mod_name, sep, attr = arch.partition(":")
    if not sep or not mod_name or not attr.isidentifier():
        raise PvqInputError(f"--arch: expected package.module:factory, got {arch!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise PvqInputError(f"--arch: cannot import {mod_name!r} ({exc})") from None
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise PvqInputError(f"--arch: {mod_name} has no callable {attr!r}")
    model = factory()
    if not isinstance(model, nn.Module):
        raise PvqInputError(f"--arch: {arch}() returned {type(model).__name__}, not a torch nn.Module")
    return model


def _state_dict(p: Path) -> dict[str, Any]:
    """Tensors of a weights file: safetensors, or a .pt/.pth state dict read with ``weights_only=True``."""
    if p.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except (SafetensorError, OSError) as exc:
            raise PvqInputError(f"{p}: corrupt or not a safetensors file ({type(exc).__name__})") from None
    if p.suffix.lower() in (".pt", ".pth", ".bin"):
        from pvq.models._files import read_state_dict

        return read_state_dict(p)
    raise PvqInputError(f"{p}: --arch needs a .safetensors or .pt/.pth state dict")


def load_model_source(source: str, arch: str | None = None) -> ModelSource:
    """The runnable model ``source`` names: a bundled model, or a weights file (state dict in safetensors or
    .pt, read without unpickling code) loaded into the architecture ``arch`` (``package.module:factory``);
    PvqInputError otherwise. A pickled whole module is refused: pvq never unpickles arbitrary objects."""
    from pvq.compare._layers_stage import bundled_name_of

    name = bundled_name_of(source) if arch is None else None
    if name is not None:
        from pvq.models import create_model, input_spec

        return ModelSource(create_model(name), name, name, input_spec(name).modality, None)
    p = Path(source).expanduser()
    if not p.exists():
        from pvq.models import bundled_names

        raise PvqInputError(f"{source}: not found (and not a bundled model: {', '.join(bundled_names())})")
    if arch is None:
        raise PvqInputError(
            f"{source}: holds weights only, with no architecture pvq can run; give --arch package.module:factory "
            "(a function returning your nn.Module; the file is its state dict), use a bundled model, or call "
            "pvq.apply(model, recipe) from Python"
        )
    if p.is_dir():
        raise PvqInputError(f"{source}: is a folder; --arch needs a .safetensors or .pt state-dict file")
    from pvq.models import load_exact

    model = build_arch(arch)
    load_exact(model, _state_dict(p), str(p))
    return ModelSource(model.eval(), p.name, path=p)
