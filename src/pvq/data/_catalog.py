"""What the offline datasets are, whether they are installed, their size and license (for ``pvq models``)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from pvq.data._fashion_mnist import DEFAULT_FASHION_MNIST_ROOT

__all__ = ["DatasetInfo", "list_datasets"]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    installed: bool
    size_bytes: int
    license: str
    source: str  # where it comes from / how it installs
    path: str


def _dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0


def _module_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin) if spec.origin else None


def list_datasets() -> list[DatasetInfo]:
    """The three offline data sources pvq uses, found without loading them."""
    fm = DEFAULT_FASHION_MNIST_ROOT
    sk = _module_file("sklearn")
    photos = sk / "datasets" / "images" if sk is not None else None
    topics = _module_file("pydoc_data.topics")
    return [
        DatasetInfo(
            "fashion_mnist",
            "Fashion-MNIST: 60 000 train + 10 000 test 28x28 grey images, 10 clothing classes",
            fm.is_dir() and any(fm.glob("t10k-images-idx3-ubyte*")),
            _dir_size(fm),
            "MIT/Expat (Zalando SE 2017)",
            "Debian dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist",
            str(fm),
        ),
        DatasetInfo(
            "sample_photos",
            "scikit-learn sample photos china.jpg, flower.jpg (427x640); seeded random crops for calibration",
            photos is not None and (photos / "china.jpg").is_file(),
            sum((photos / f).stat().st_size for f in ("china.jpg", "flower.jpg") if (photos / f).is_file())
            if photos is not None
            else 0,
            "CC BY 2.0 (Flickr photographers, per sklearn's images/README.txt); scikit-learn BSD-3-Clause",
            "scikit-learn load_sample_images()",
            str(photos or ""),
        ),
        DatasetInfo(
            "pydoc_topics",
            "Python's pydoc help-topics text (about 0.46 M characters of English) for perplexity and text calibration",
            topics is not None and topics.is_file(),
            topics.stat().st_size if topics is not None and topics.is_file() else 0,
            "PSF-2.0 (ships with CPython)",
            "pydoc_data/topics.py of the running Python",
            str(topics or ""),
        ),
    ]
