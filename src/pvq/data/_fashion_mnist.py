"""Fashion-MNIST from its IDX files (``*-idx3-ubyte[.gz]``), as installed by Debian's dataset-fashion-mnist."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from pvq.errors import PvqInputError

__all__ = ["DEFAULT_FASHION_MNIST_ROOT", "FASHION_MNIST_CLASSES", "fashion_mnist", "read_idx"]

DEFAULT_FASHION_MNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_PREFIX = {"train": "train", "test": "t10k"}
# IDX type codes -> numpy dtypes (big-endian, as the format stores them)
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise PvqInputError(
        f"{root / (stem + '.gz')}: Fashion-MNIST file not found (install dataset-fashion-mnist or pass --data DIR)"
    )


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array of its stored shape and type."""
    p = Path(path)
    try:
        raw = gzip.open(p, "rb").read() if p.suffix == ".gz" else p.read_bytes()
    except FileNotFoundError:
        raise PvqInputError(f"{p}: file not found") from None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise PvqInputError(f"{p}: cannot read IDX file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise PvqInputError(f"{p}: not an IDX file (bad magic number)")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise PvqInputError(f"{p}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise PvqInputError(
            f"{p}: IDX payload has {len(raw) - header} bytes, header says {expected} (corrupt or truncated)"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def fashion_mnist(split: str = "train", root: str | os.PathLike[str] | None = None) -> TensorDataset:
    """Fashion-MNIST ``split`` ("train": 60 000, "test": 10 000) as a TensorDataset.

    Returns images, float32 of shape (N, 1, 28, 28) in [0, 1], and int64 labels (N,) in 0..9
    (names in ``FASHION_MNIST_CLASSES``). ``root`` defaults to /usr/share/datasets/fashion-mnist.
    """
    if split not in _PREFIX:
        raise PvqInputError(f"split: must be 'train' or 'test', got {split!r}")
    base = Path(root) if root is not None else DEFAULT_FASHION_MNIST_ROOT
    if not base.is_dir():
        raise PvqInputError(
            f"{base}: Fashion-MNIST folder not found (install dataset-fashion-mnist or pass --data DIR)"
        )
    img_path = _find(base, f"{_PREFIX[split]}-images-idx3-ubyte")
    lab_path = _find(base, f"{_PREFIX[split]}-labels-idx1-ubyte")
    images = read_idx(img_path)
    labels = read_idx(lab_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise PvqInputError(
            f"{img_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise PvqInputError(f"{lab_path}: {labels.shape[0]} labels for {images.shape[0]} images")
    if labels.size and int(labels.max()) > 9:
        raise PvqInputError(f"{lab_path}: labels must be 0..9, found {int(labels.max())}")
    x = torch.from_numpy(images.copy()).to(torch.float32).div_(255.0).unsqueeze(1)  # (N, 1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))  # (N,)
    return TensorDataset(x, y)
