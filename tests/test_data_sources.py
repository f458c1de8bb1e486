"""pvq.data: Fashion-MNIST IDX reader, sample-photo crops, ImageNet preprocessing, text sources."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from pvq.data import (
    DEFAULT_FASHION_MNIST_ROOT,
    fashion_mnist,
    image_folder,
    imagenet_normalize,
    imagenet_preprocess,
    perplexity_text,
    read_idx,
    sample_photo_crops,
    sample_photos,
    text_file,
)
from pvq.errors import PvqInputError


def _write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def _fake_fmnist(root: Path, n: int = 5) -> None:
    rng = np.random.default_rng(0)
    _write_idx(root / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
    _write_idx(root / "t10k-labels-idx1-ubyte.gz", np.arange(n) % 10)


def test_idx_roundtrip_plain_and_gz(tmp_path: Path) -> None:
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", arr)
    _write_idx(tmp_path / "a", arr, gz=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), arr)


def test_fashion_mnist_from_given_folder(tmp_path: Path) -> None:
    _fake_fmnist(tmp_path)
    ds = fashion_mnist("test", root=tmp_path)
    x, y = ds.tensors
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert y.tolist() == [0, 1, 2, 3, 4] and y.dtype == torch.int64


@pytest.mark.skipif(not DEFAULT_FASHION_MNIST_ROOT.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_test_split() -> None:
    x, y = fashion_mnist("test").tensors
    assert x.shape == (10000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [1000] * 10  # the test split is balanced
    assert 0.2 < float(x.mean()) < 0.4  # mean pixel of Fashion-MNIST is about 0.286


def test_fashion_mnist_errors(tmp_path: Path) -> None:
    with pytest.raises(PvqInputError, match="not found"):
        fashion_mnist("test", root=tmp_path / "nope")
    with pytest.raises(PvqInputError, match="t10k-images"):
        fashion_mnist("test", root=tmp_path)  # folder exists, files missing
    with pytest.raises(PvqInputError, match="split"):
        fashion_mnist("valid", root=tmp_path)
    _fake_fmnist(tmp_path)
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(bad.read_bytes()[:10]))  # not even the gzip payload is IDX now
    with pytest.raises(PvqInputError, match=r"t10k-images-idx3-ubyte\.gz"):
        fashion_mnist("test", root=tmp_path)
    bad.write_bytes(b"garbage, not gzip")
    with pytest.raises(PvqInputError, match="cannot read"):
        fashion_mnist("test", root=tmp_path)
    arr = np.zeros((5, 28, 28), np.uint8)
    raw = bytes([0, 0, 8, 3]) + b"".join(struct.pack(">I", s) for s in arr.shape) + arr.tobytes()[:-7]
    bad.write_bytes(gzip.compress(raw))
    with pytest.raises(PvqInputError, match="truncated"):
        fashion_mnist("test", root=tmp_path)


def test_sample_photo_crops_seeded() -> None:
    a = sample_photo_crops(3, size=64, seed=7)
    b = sample_photo_crops(3, size=64, seed=7)
    c = sample_photo_crops(3, size=64, seed=8)
    assert a.shape == (3, 3, 64, 64)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0 and float(a.std()) > 0.05
    with pytest.raises(PvqInputError, match="n:"):
        sample_photo_crops(0)


def test_imagenet_preprocess_shapes_and_stats() -> None:
    china = sample_photos()["china"]
    x = imagenet_preprocess(china)
    assert x.shape == (3, 224, 224)
    ones = imagenet_normalize(torch.ones(2, 3, 4, 4))
    assert torch.allclose(
        ones[0, :, 0, 0], torch.tensor([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225])
    )
    with pytest.raises(PvqInputError, match="x:"):
        imagenet_normalize(torch.ones(2, 4, 4))


def test_image_folder(tmp_path: Path) -> None:
    from PIL import Image

    photos = sample_photos()
    for i, (name, img) in enumerate(sorted(photos.items())):
        (tmp_path / f"class{i}").mkdir()
        Image.fromarray(img).save(tmp_path / f"class{i}" / f"{name}.png")
    ds = image_folder(tmp_path, size=32)
    x, y = ds.tensors
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [0, 1]
    (tmp_path / "empty").mkdir()
    with pytest.raises(PvqInputError, match="no images"):
        image_folder(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(PvqInputError, match=r"x\.jpg"):
        image_folder(tmp_path / "broken")


def test_text_sources(tmp_path: Path) -> None:
    text = perplexity_text()
    assert len(text) > 100_000 and "lambda" in text
    assert perplexity_text() == text  # deterministic
    f = tmp_path / "t.txt"
    f.write_text("hello world\n", encoding="utf-8")
    assert text_file(f) == "hello world\n"
    with pytest.raises(PvqInputError, match="not found"):
        text_file(tmp_path / "missing.txt")
    (tmp_path / "e.txt").write_text("  \n")
    with pytest.raises(PvqInputError, match="empty"):
        text_file(tmp_path / "e.txt")
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(PvqInputError, match="UTF-8"):
        text_file(tmp_path / "b.txt")


def test_list_datasets() -> None:
    from pvq.data import list_datasets

    rows = {d.name: d for d in list_datasets()}
    assert list(rows) == ["fashion_mnist", "sample_photos", "pydoc_topics"]
    assert rows["pydoc_topics"].installed and rows["pydoc_topics"].size_bytes > 100_000
    assert rows["sample_photos"].installed and rows["sample_photos"].license
    assert rows["fashion_mnist"].installed == DEFAULT_FASHION_MNIST_ROOT.is_dir()
