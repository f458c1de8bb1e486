"""The bit-packed LSQ export (``quantized.safetensors``): exact round trip, size ~ bits/8 per weight."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from pvq.errors import PvqInputError
from pvq.training import add_lsq, export_quantized, load_quantized, save_quantized


def _lsq_model(bits: int, **kw: object) -> nn.Module:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(8, 32, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 300), nn.Linear(300, 800))
    add_lsq(m, bits, **kw)
    return m


def _same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for k in a:
        assert set(a[k]) == set(b[k]) and a[k]["bits"] == b[k]["bits"]
        assert b[k]["int"].dtype == torch.int32 and torch.equal(a[k]["int"], b[k]["int"])
        for f in ("scale", "offset"):
            if f in a[k]:
                assert type(a[k][f]) is type(b[k][f])
                assert torch.equal(torch.as_tensor(a[k][f]), torch.as_tensor(b[k][f]))


@pytest.mark.parametrize("bits,kw", [(2, {}), (3, {}), (4, {"per_channel": True}), (5, {"asymmetric": True}),
                                     (8, {}), (12, {}), (16, {"asymmetric": True})])
def test_round_trip_is_exact(bits: int, kw: dict, tmp_path: Path) -> None:
    ex = export_quantized(_lsq_model(bits, **kw))
    # the codes span the grid's ends, so a wrong shift or bit count would show
    assert any(int(v["int"].min()) < 0 or int(v["int"].max()) > 0 for v in ex.values())
    save_quantized(tmp_path / "q.safetensors", ex)
    _same(ex, load_quantized(tmp_path / "q.safetensors"))


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
def test_file_size_is_bits_per_weight_plus_scales(bits: int, tmp_path: Path) -> None:
    ex = export_quantized(_lsq_model(bits))
    path = tmp_path / "q.safetensors"
    save_quantized(path, ex)
    n = sum(v["int"].numel() for v in ex.values())
    expected = sum(math.ceil(v["int"].numel() * bits / 8) + 4 + 8 * v["int"].dim() for v in ex.values())
    size = path.stat().st_size
    header = 8 + int.from_bytes(path.read_bytes()[:8], "little")  # safetensors: u64 length, then JSON header
    assert size - header == expected  # the payload: packed codes, FP32 scales, int64 shapes, nothing else
    assert abs(size - expected) <= 0.02 * expected, (size, expected, n)
    # and far below the int32 pickle it replaces
    buf = io.BytesIO()
    torch.save(ex, buf)
    assert size < buf.getbuffer().nbytes * (bits / 32) * 1.1


def test_corrupt_file_is_a_one_line_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "q.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(PvqInputError, match="q.safetensors"):
        load_quantized(bad)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(3)}, str(bad), metadata={"format": "other"})
    with pytest.raises(PvqInputError, match="pvq-lsq-packed"):
        load_quantized(bad)


def test_out_of_range_codes_are_refused() -> None:
    from pvq.training import encode_quantized

    with pytest.raises(ValueError, match=r"\[-4, 3\]"):
        encode_quantized({"fc": {"int": torch.tensor([4], dtype=torch.int32), "scale": 1.0, "bits": 3}})
