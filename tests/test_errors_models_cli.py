"""Bad model files through the command line: one line on stderr naming the file, exit code 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from _model_files import TinyNet
from pvq.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_pvq_models_lists_four(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["models", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == ["mobilenet_v2", "efficientnet_lite0", "minilm", "smollm2"]
    for r in rows:
        assert {"installed", "num_params", "file_size", "license", "notes"} <= set(r)
    assert "already 4-bit" in rows[3]["notes"]
    code, out, _ = _run(["models"], capsys)
    assert code == 0 and "smollm2" in out and "Q4_1" in out and "fashion_mnist" in out


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (print, ("never",))


def _bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    files: dict[str, tuple[Path, str]] = {}
    files["missing"] = (tmp / "missing.pt", "file not found")
    p = tmp / "corrupt.safetensors"
    p.write_bytes(b"\x00this is no safetensors file" * 4)
    files["corrupt"] = (p, "corrupt")
    p = tmp / "model.weird"
    p.write_bytes(b"abc")
    files["unknown"] = (p, "unknown model format")
    p = tmp / "evil.pt"
    torch.save({"w": torch.ones(2, 2), "x": _Evil()}, p)
    files["pickle"] = (p, "refused")
    p = tmp / "empty_model.pt"
    torch.save(nn.BatchNorm1d(4).state_dict(), p)
    files["empty"] = (p, "no conv/linear weights")
    net = TinyNet()
    with torch.no_grad():
        net.conv.weight[0, 0, 0, 0] = float("nan")
    p = tmp / "nan.pt"
    torch.save(net.state_dict(), p)
    files["nan"] = (p, "NaN/Inf")
    return files


@pytest.mark.parametrize("case", ["missing", "corrupt", "unknown", "pickle", "empty", "nan"])
def test_bad_model_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    path, what = _bad_files(tmp_path)[case]
    code, out, err = _run(["compare", str(path), "--out", str(tmp_path / "out"), "--layers", "0"], capsys)
    assert code == 2
    # the error is one line, the last; before it only progress/stage lines (stderr is not a terminal here)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("pvq: error: ") and all(ln.startswith("pvq: ") for ln in lines), err
    assert sum(ln.startswith("pvq: error") for ln in lines) == 1
    lines = lines[-1:]
    assert path.name in lines[0] and what in lines[0]
    assert "Traceback" not in err
