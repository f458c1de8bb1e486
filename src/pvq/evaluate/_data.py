"""Held-out evaluation data that installs offline, disjoint from what pvq calibrates on.

- Text: the held-out slice of the bundled pydoc text, ``pvq.models.evaluation_text(name)`` (its first 4,096+
  tokens and at least 60,000 characters: about 13 k SmolLM2 tokens, 240 prose sentences). Calibration draws
  only from the text after it (``pvq.models.calibration_batches``), so the two never overlap.
- Photos: scikit-image's bundled colour photos (astronaut, chelsea, coffee, rocket, motorcycle, Hubble deep
  field, retina), read straight from the installed package's data folder with Pillow. Calibration uses
  scikit-learn's two sample photos, so evaluation images never overlap calibration images.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from pvq.errors import PvqInputError

__all__ = [
    "EVAL_PHOTOS",
    "held_out_text",
    "held_out_sentences",
    "evaluation_photos",
    "photo_views",
]

EVAL_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
)


def held_out_text(name: str) -> str:
    """The evaluation slice of the bundled text for the bundled text model ``name`` (never used for calibration)."""
    from pvq.models import evaluation_text

    return evaluation_text(name)


def held_out_sentences(name: str, max_sentences: int = 200) -> list[str]:
    """Prose sentences of the evaluation slice (at most ``max_sentences``, in text order)."""
    from pvq.models import split_sentences

    return split_sentences(held_out_text(name))[:max_sentences]


def _skimage_data() -> Path:
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise PvqInputError(
            "scikit-image: not installed; its bundled photos are pvq's evaluation images (pip install scikit-image)"
        )
    return Path(spec.origin).parent / "data"


def evaluation_photos() -> dict[str, np.ndarray]:
    """scikit-image's bundled colour photos: name -> (H, W, 3) uint8 RGB."""
    from pvq.data import load_image

    folder = _skimage_data()
    out = {}
    for f in EVAL_PHOTOS:
        p = folder / f
        if not p.is_file():
            raise PvqInputError(f"scikit-image: bundled photo {p} missing (reinstall scikit-image)")
        out[p.stem] = load_image(p)
    return out


def photo_views(
    mean: tuple[float, float, float], std: tuple[float, float, float], size: int = 224, resize: int = 256
) -> torch.Tensor:
    """Ten views of each evaluation photo (shorter side to ``resize``; four corner crops and the centre crop
    of ``size``, each also mirrored), normalised by ``mean``/``std``: (10 * len(EVAL_PHOTOS), 3, size, size)."""
    from pvq.data import imagenet_normalize

    if resize < size:
        raise PvqInputError(f"resize: must be >= size ({size}), got {resize}")
    views = []
    for img in evaluation_photos().values():
        big = _shorter_side(img, resize)  # (3, h, w), shorter side = resize
        h, w = big.shape[1:]
        corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), ((h - size) // 2, (w - size) // 2)]
        for top, left in corners:
            crop = big[:, top : top + size, left : left + size]
            views += [crop, crop.flip(-1)]
    return imagenet_normalize(torch.stack(views).clamp_(0.0, 1.0), mean, std)


def _shorter_side(img: np.ndarray, resize: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, h, w) float in [0, 1] with the shorter side ``resize`` (antialiased bilinear)."""
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
    h, w = x.shape[1:]
    hw = (resize, int(round(resize * w / h))) if h <= w else (int(round(resize * h / w)), resize)
    return torch.nn.functional.interpolate(x[None], size=hw, mode="bilinear", align_corners=False, antialias=True)[0]
