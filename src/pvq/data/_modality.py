"""``--data`` against a model's modality: a folder of images for image models, a UTF-8 text file for text."""

from __future__ import annotations

import os
from pathlib import Path

from pvq.errors import PvqInputError

__all__ = ["check_data_modality"]


def check_data_modality(data: str | os.PathLike[str], modality: str, model: str, arg: str = "--data") -> str:
    """``"images"`` or ``"text"`` for ``data`` after checking it suits ``modality`` (``image``/``text``);
    PvqInputError with one line naming the mismatch otherwise."""
    p = Path(data)
    if not p.exists():
        raise PvqInputError(f"{arg}: {p} not found")
    if modality == "image":
        if not p.is_dir():
            raise PvqInputError(
                f"{arg}: {model} is an image model; give a folder of images, not the file {p}"
            )
        return "images"
    if modality == "text":
        if p.is_dir():
            raise PvqInputError(
                f"{arg}: {model} is a text model; give a UTF-8 text file, not the folder {p} (images?)"
            )
        return "text"
    raise PvqInputError(f"{arg}: unknown modality {modality!r} for {model}")
