"""`pvq apply` end to end: a tiny saved module, bundled MobileNetV2, and its bad inputs (exit 2, one line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from pvq.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(["apply", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def tiny_module(path: Path) -> tuple[Path, nn.Module]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10)).eval()
    torch.save(model, path)
    return path, model


def test_apply_tiny_saved_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, model = tiny_module(tmp_path / "tiny.pt")
    out = tmp_path / "out"
    code, stdout, err = run(capsys, str(src), "--recipe", "int8:channel:rtn", "--out", str(out), "--json")
    assert code == 0, err
    rows = json.loads(stdout)
    assert [r["status"] for r in rows] == ["compressed", "compressed"]
    assert {r["name"] for r in rows} == {"0.weight", "3.weight"}
    state = load_file(str(out / "model.dequantized.safetensors"))
    fresh = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    report = fresh.load_state_dict(state)
    assert not report.missing_keys and not report.unexpected_keys
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ref, got = model(x), fresh(x)
    assert 0 < float((got - ref).norm() / ref.norm()) < 1e-2
    assert (out / "manifest.json").is_file()
    # a calibration recipe on a user module needs --data
    code, _, err = run(capsys, str(src), "--recipe", "prune50:wanda", "--out", str(tmp_path / "o2"))
    assert code == 2 and "--data" in err and "Traceback" not in err


def test_apply_plan_from_compare_allocation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, _ = tiny_module(tmp_path / "tiny.pt")
    alloc = tmp_path / "allocation.json"
    alloc.write_text(
        json.dumps([{"name": "0.weight", "label": "INT4"}, {"name": "3.weight", "label": "prune 75%"}])
    )
    code, stdout, err = run(capsys, str(src), "--plan", str(alloc), "--out", str(tmp_path / "o"), "--json")
    assert code == 0, err
    rows = {r["name"]: r["recipe"] for r in json.loads(stdout)}
    assert rows == {"0.weight": "int4:tensor:rtn", "3.weight": "prune75:magnitude"}
    alloc.write_text(json.dumps([{"name": "nope.weight", "label": "INT4"}]))
    code, _, err = run(capsys, str(src), "--plan", str(alloc), "--out", str(tmp_path / "o3"))
    assert code == 2 and "nope.weight" in err and len(err.strip().splitlines()) == 1


def test_bad_recipe_exits_2_with_the_grammar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "mobilenet_v2", "--recipe", "int4:g128:gtpq", "--out", str(tmp_path / "o"))
    assert code == 2
    assert err.startswith("pvq: error:") and "recipe grammar" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_existing_out_is_refused_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, _ = tiny_module(tmp_path / "tiny.pt")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    code, _, err = run(capsys, str(src), "--recipe", "int8:channel:rtn", "--out", str(out))
    assert code == 2 and "--force" in err
    assert (out / "keep.txt").exists()
    code, _, err = run(capsys, str(src), "--recipe", "int8:channel:rtn", "--out", str(out), "--force")
    assert code == 0, err
    assert not (out / "keep.txt").exists() and (out / "model.dequantized.safetensors").is_file()


def test_wrong_modality_data_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    code, _, err = run(
        capsys, "minilm", "--recipe", "prune50:wanda", "--data", str(images), "--out", str(tmp_path / "o")
    )
    assert code == 2 and "text model" in err and "Traceback" not in err
    text = tmp_path / "notes.txt"
    text.write_text("some text")
    code, _, err = run(
        capsys, "mobilenet_v2", "--recipe", "prune50:wanda", "--data", str(text), "--out", str(tmp_path / "o")
    )
    assert code == 2 and "image model" in err


def test_compare_minilm_with_image_data_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    try:
        main(["compare", "minilm", "--data", str(images), "--out", str(tmp_path / "c"), "--quiet"])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and "text model" in err and "Traceback" not in err


def test_apply_bundled_mobilenet_int8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pvq.models import create_model

    out = tmp_path / "mnv2"
    code, stdout, err = run(
        capsys, "mobilenet_v2", "--recipe", "int8:channel:rtn", "--out", str(out), "--json"
    )
    assert code == 0, err
    rows = json.loads(stdout)
    assert len(rows) == 53 and all(r["status"] == "compressed" for r in rows)
    n = sum(r["numel"] for r in rows)
    assert 8.0 < sum(r["bits_per_weight"] * r["numel"] for r in rows) / n < 8.5
    model = create_model("mobilenet_v2")
    report = model.load_state_dict(load_file(str(out / "model.dequantized.safetensors")))
    assert not report.missing_keys and not report.unexpected_keys
