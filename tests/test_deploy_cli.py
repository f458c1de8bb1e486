"""`pvq deploy`: bad input exits 2 with one line before any work; one bundled MobileNetV2 run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from pvq.cli import main  # noqa: E402
from pvq.deploy._ort import _layer  # noqa: E402


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(["deploy", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["smollm2", "--recipe", "int8-static"], "--recipe int8-static: not measured for a causal LM (smollm2)"),
        (["mobilenet_v2", "--recipe", "bogus"], "--recipe bogus: not a deploy option"),
        (["mobilenet_v2", "--recipe", "channels0"], "--recipe channels0: channelsK keeps K %"),
        (["mobilenet_v2", "--batch", "1,x"], "--batch: comma-separated integers"),
        (["mobilenet_v2", "--batch", "0"], "--batch: batch sizes must be in 1..256"),
        (["mobilenet_v2", "--runtime", "tensorrt"], "--runtime: must be one of onnxruntime, torch"),
        (["mobilenet_v2", "--repeats", "0"], "--repeats/--warmup"),
        (["nosuchmodel.pt"], "nosuchmodel.pt: pvq deploy measures bundled models"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("pvq: error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_existing_out_is_refused_and_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "mobilenet_v2", "--out", str(out))
    assert code == 2 and "--out" in err and "--force" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_onnx_node_names_map_back_to_module_paths() -> None:
    assert _layer("/features/features.1/conv/conv.0/conv.0.0/Conv") == "features.1.conv.0.0"
    assert _layer("/0/ConvTranspose") == "0"
    assert _layer("/encoder/layer.0/attention/self/query/MatMul") == "encoder.layer.0.attention.self.query"


@pytest.mark.slow  # about a minute on the shared 2-core machine: the bundled model, 70 evaluation views
def test_mobilenet_v2_fp32_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "deploy"
    code, stdout, err = run(
        capsys,
        "mobilenet_v2",
        "--recipe",
        "fp32",
        "--batch",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--out",
        str(out),
        "--json",
    )
    assert code == 0, err
    (row,) = json.loads(stdout)
    assert row["recipe"] == "fp32" and row["runtime"] == "onnxruntime" and row["latency_ratio"] == 1.0
    assert row["metric"] == "agreement" and row["value"] == 1.0 and row["n"] == 70
    assert row["check_max_abs"] <= 1e-4 + 1e-3 * 30  # FP32 export of the BN-folded MobileNetV2
    assert row["bytes"] == (out / "fp32.onnx").stat().st_size > 13_000_000
    assert json.loads((out / "deploy.json").read_text()) == [row]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
