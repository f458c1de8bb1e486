"""Bad model input -> PvqInputError with a one-line message naming the file (the CLI maps it to exit 2)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from _model_files import TinyNet, write_gguf
from pvq.errors import PvqInputError
from pvq.models import load_weights


def _fails(source, match: str, name: str | None = None) -> str:  # noqa: ANN001
    with pytest.raises(PvqInputError, match=match) as info:
        ws = load_weights(source)
        for k in ws:  # NaN/Inf is found when a tensor is read
            ws[k]
    msg = str(info.value)
    assert "\n" not in msg
    if name is not None:
        assert name in msg
    return msg


def test_missing_file(tmp_path: Path) -> None:
    _fails(tmp_path / "nope.pt", "file not found", "nope.pt")
    _fails("no_such_model_name", "not a bundled model|file not found", "no_such_model_name")


def test_unknown_extension(tmp_path: Path) -> None:
    p = tmp_path / "weights.xyz"
    p.write_bytes(b"1234")
    _fails(p, "unknown model format", "weights.xyz")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.pt"
    p.write_bytes(b"")
    _fails(p, "empty", "empty.pt")


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".onnx", ".gguf"])
def test_corrupt_file(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"bad{suffix}"
    p.write_bytes(b"\x00garbage that is not a model file" * 10)
    _fails(p, "corrupt|not a", f"bad{suffix}")


def test_truncated_torch_file(tmp_path: Path) -> None:
    p = tmp_path / "cut.pth"
    torch.save(TinyNet().state_dict(), p)
    p.write_bytes(p.read_bytes()[:300])
    _fails(p, "corrupt", "cut.pth")


def test_truncated_gguf(tmp_path: Path) -> None:
    p = tmp_path / "cut.gguf"
    write_gguf(p, {"blk.0.ffn_up.weight": (np.ones((8, 64)), "F32")})
    p.write_bytes(p.read_bytes()[:-100])
    _fails(p, "truncated", "cut.gguf")


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (print, ("this must never run",))


def test_pickle_refused_by_weights_only(tmp_path: Path) -> None:
    p = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(2, 2), "obj": _Evil()}, p)
    msg = _fails(p, "refused", "evil.pt")
    assert "weights_only" in msg
    p2 = tmp_path / "plain_pickle.bin"
    p2.write_bytes(pickle.dumps({"w": _Evil()}))
    _fails(p2, "refused|corrupt", "plain_pickle.bin")


def test_empty_model(tmp_path: Path) -> None:
    _fails(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)), "no conv/linear weights")
    p = tmp_path / "norms_only.pt"
    torch.save({"bn.weight": torch.ones(3), "bn.bias": torch.zeros(3)}, p)
    _fails(p, "no conv/linear weights", "norms_only.pt")
    p = tmp_path / "not_a_dict.pt"
    torch.save([torch.ones(2, 2)], p)
    _fails(p, "state dict", "not_a_dict.pt")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_inf_weights(tmp_path: Path, bad: float) -> None:
    net = TinyNet()
    with torch.no_grad():
        net.fc.weight[0, 0] = bad
    p = tmp_path / "nan.pt"
    torch.save(net.state_dict(), p)
    _fails(p, "NaN/Inf", "nan.pt")
    _fails(net, "NaN/Inf", "fc.weight")


def test_hf_folder_without_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    _fails(tmp_path, "no model.safetensors", str(tmp_path))


def test_bad_kinds() -> None:
    with pytest.raises(PvqInputError, match="kinds"):
        load_weights(TinyNet(), kinds=("convolution",))
