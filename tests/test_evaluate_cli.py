"""`pvq evaluate` end to end: bad input is one line and exit 2; apply -> save -> evaluate --compressed round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pvq.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["evaluate", "mobilenet_v2", "--recipe", "int4:g128:gptq", "--compressed", "x"], "at most one"),
        (["evaluate", "mobilenet_v2", "--recipe", "int4:g1:rtn"], "recipe grammar"),
        (["evaluate", "no_such_model"], "bundled model"),
        (["evaluate", "no_such_model.pt"], "file not found"),  # a .pt is read as a SmallResNet state dict
        (["evaluate", "small_resnet", "--compressed", "x"], "--compressed: not supported for Fashion-MNIST"),
        (["evaluate", "smollm2", "--max-tokens", "1"], "--max-tokens"),
        (["evaluate", "mobilenet_v2", "--compressed", "/nonexistent/folder"], "--compressed"),
    ],
)
def test_bad_input_is_one_line(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2 and needle in err and err.startswith("pvq: error:") and len(err.strip().splitlines()) == 1


def test_wrong_modality_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "t.txt"
    text.write_text("Plain text. More of it.")
    code, _, err = run(capsys, "evaluate", "mobilenet_v2", "--data", str(text))
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_apply_then_evaluate_the_saved_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The checkpoint read back through compressed-tensors evaluates as the in-memory compressed model does."""
    out = tmp_path / "mnv2-int8"
    code, _, err = run(capsys, "apply", "mobilenet_v2", "--recipe", "int8:channel:rtn", "--out", str(out))
    assert code == 0, err
    code, saved, err = run(capsys, "evaluate", "mobilenet_v2", "--compressed", str(out), "--json")
    assert code == 0, err
    code, live, err = run(capsys, "evaluate", "mobilenet_v2", "--recipe", "int8:channel:rtn", "--json")
    assert code == 0, err
    a = {r["metric"]: r for r in json.loads(saved)}
    b = {r["metric"]: r for r in json.loads(live)}
    assert a["agreement"]["value"] == pytest.approx(b["agreement"]["value"], abs=1 / 70)
    assert a["kl"]["value"] == pytest.approx(b["kl"]["value"], rel=0.05)
    assert a["agreement"]["n"] == 70 and a["agreement"]["ci_low"] <= a["agreement"]["value"]
    assert 8.0 < a["bits_per_weight"] < 8.3


def test_a_state_dict_that_is_no_small_resnet_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    f = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2, 2)}, f)
    code, _, err = run(capsys, "evaluate", str(f))
    assert code == 2 and "not a SmallResNet state dict" in err and len(err.strip().splitlines()) == 1
