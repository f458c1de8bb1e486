"""Images: scikit-learn's sample photos (seeded random crops), ImageNet preprocessing, a user's image folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from pvq.errors import PvqInputError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "sample_photos",
    "sample_photo_crops",
    "imagenet_normalize",
    "imagenet_preprocess",
    "load_image",
    "image_folder",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


def sample_photos() -> dict[str, np.ndarray]:
    """scikit-learn's two sample photos, ``{"china": (427, 640, 3) uint8, "flower": ...}``."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        raise PvqInputError(
            "scikit-learn: not installed; it provides the calibration photos (pip install scikit-learn)"
        ) from None
    bunch = load_sample_images()
    return {Path(f).stem: np.asarray(img) for f, img in zip(bunch.filenames, bunch.images, strict=True)}


def _to_chw(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).to(torch.float32).div_(255.0)


def sample_photo_crops(
    n: int, size: int = 224, seed: int = 0, region: tuple[float, float] = (0.0, 1.0)
) -> torch.Tensor:
    """``n`` seeded random square crops of the sample photos, resized to ``size``: (n, 3, size, size) in [0, 1].

    Each crop picks a photo, a side between 0.35 and 1.0 of the shorter side of the photo's ``region``
    (a fraction (start, stop) of its width: crops from (0, 0.6) and (0.6, 1) share no pixel), a position in
    the region, and a horizontal flip with probability 1/2; it is resized with antialiased bilinear
    interpolation. Not normalised: apply ``imagenet_normalize`` for ImageNet models.
    """
    a, b = (float(v) for v in region)
    if not 0.0 <= a < b <= 1.0:
        raise PvqInputError(f"region: need 0 <= start < stop <= 1 (fractions of the width), got {region}")
    if n < 1:
        raise PvqInputError(f"n: need at least 1 crop, got {n}")
    if size < 8:
        raise PvqInputError(f"size: must be >= 8 pixels, got {size}")
    rng = np.random.default_rng(seed)
    photos = [_to_chw(p) for _, p in sorted(sample_photos().items())]
    out = torch.empty(n, 3, size, size)
    for i in range(n):
        img = photos[int(rng.integers(len(photos)))]
        x0, x1 = round(a * img.shape[2]), round(b * img.shape[2])
        img = img[:, :, x0:x1]
        h, w = img.shape[1:]
        side = int(rng.uniform(0.35, 1.0) * min(h, w))
        top = int(rng.integers(0, h - side + 1))
        left = int(rng.integers(0, w - side + 1))
        crop = img[:, top : top + side, left : left + side]
        if rng.random() < 0.5:
            crop = crop.flip(-1)
        out[i] = _resize(crop.unsqueeze(0), (size, size))[0]
    return out.clamp_(0.0, 1.0)


def imagenet_normalize(
    x: torch.Tensor, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` of images x (..., 3, H, W) in [0, 1] (ImageNet statistics by default)."""
    if x.ndim < 3 or x.shape[-3] != 3:
        raise PvqInputError(f"x: expected (..., 3, H, W) images, got shape {tuple(x.shape)}")
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - m) / s


def imagenet_preprocess(
    img: np.ndarray | torch.Tensor,
    resize: int = 256,
    crop: int = 224,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> torch.Tensor:
    """The standard ImageNet evaluation transform: shorter side to ``resize``, centre crop ``crop``, normalise.

    ``img`` is (H, W, 3) uint8 (numpy) or (3, H, W) float in [0, 1]; returns (3, crop, crop) float32.
    ``mean``/``std`` default to the ImageNet statistics (torchvision models); TF-trained models such as
    EfficientNet-Lite use 0.5/0.5.
    """
    x = _to_chw(img) if isinstance(img, np.ndarray) else img.to(torch.float32)
    h, w = x.shape[1:]
    if h <= w:
        new_h, new_w = resize, int(resize * w / h)
    else:
        new_h, new_w = int(resize * h / w), resize
    x = _resize(x.unsqueeze(0), (new_h, new_w))[0]
    top, left = int(round((new_h - crop) / 2.0)), int(round((new_w - crop) / 2.0))
    x = x[:, top : top + crop, left : left + crop].clamp(0.0, 1.0)
    return imagenet_normalize(x, mean, std)


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB (PIL)."""
    p = Path(path)
    if not p.is_file():
        raise PvqInputError(f"{p}: file not found")
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise PvqInputError(
            "Pillow: not installed; it is needed to read image files (pip install pillow)"
        ) from None
    try:
        with Image.open(p) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise PvqInputError(f"{p}: cannot decode image ({type(exc).__name__})") from None


def image_folder(path: str | os.PathLike[str], size: int = 224, normalize: bool = True) -> TensorDataset:
    """A user's images as a TensorDataset (x (N, 3, size, size), y (N,) int64).

    ImageFolder layout (one subfolder per class; labels are the sorted subfolder indices) or a flat
    folder of images (all labels 0). Each image goes through ``imagenet_preprocess`` (resize to
    size*8/7, centre crop ``size``); ``normalize=False`` keeps [0, 1] pixels.
    """
    root = Path(path)
    if not root.is_dir():
        raise PvqInputError(f"{root}: image folder not found")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    groups = [(i, root / c) for i, c in enumerate(classes)] or [(0, root)]
    files = [
        (label, f)
        for label, folder in groups
        for f in sorted(folder.iterdir())
        if f.is_file() and f.suffix.lower() in _IMAGE_EXTS
    ]
    if not files:
        raise PvqInputError(f"{root}: no images found ({', '.join(_IMAGE_EXTS)})")
    xs = []
    for _, f in files:
        x = imagenet_preprocess(load_image(f), resize=int(round(size * 8 / 7)), crop=size)
        if not normalize:
            std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
            mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
            x = x * std + mean
        xs.append(x)
    return TensorDataset(torch.stack(xs), torch.tensor([label for label, _ in files], dtype=torch.int64))


def _resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, *hw), bilinear with antialiasing (as PIL / torchvision's Resize)."""
    return torch.nn.functional.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=True)
