"""`pvq finetune` and `pvq reproduce table1 --preset smoke` end to end, and bad input -> exit 2."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from _cli_run import run_pvq
from pvq.data import DEFAULT_FASHION_MNIST_ROOT
from pvq.models._small_resnet import SmallResNet
from pvq.training import export_quantized, load_quantized, prepare_model

needs_fmnist = pytest.mark.skipif(
    not DEFAULT_FASHION_MNIST_ROOT.is_dir(), reason="Fashion-MNIST not installed"
)


@needs_fmnist
def test_finetune_cli_quant_from_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = tmp_path / "net.pt"
    torch.save(SmallResNet((4, 8, 8)).state_dict(), src)
    out = tmp_path / "out"
    res = run_pvq(
        "finetune",
        str(src),
        "--method",
        "both",
        "--bits",
        "3",
        "--sparsity",
        "0.5",
        "--epochs",
        "1",
        "--train-size",
        "128",
        "--val-size",
        "64",
        "--test-size",
        "64",
        "--batch-size",
        "64",
        "--threads",
        "1",
        "--out",
        str(out),
        "--json",
    )
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["method"] for r in rows] == ["none", "both"]
    assert {"model", "method", "bits", "sparsity", "epochs", "metric", "value", "split"} <= set(rows[1])
    assert rows[1]["sparsity"] >= 0.5 and 0.0 <= rows[1]["value"] <= 100.0
    assert rows[0]["finetuned"] is False and rows[0]["epochs"] == 0
    assert rows[0]["baseline_label"] == "uncompressed, not fine-tuned (1 epoch fewer than the compressed model)"
    assert rows[1]["finetuned"] is True
    assert not (out / "quantized.pt").exists()
    ex = load_quantized(out / "quantized.safetensors")
    q = ex["conv1"]["int"]
    assert q.dtype == torch.int32 and int(q.min()) >= -4 and int(q.max()) <= 3 and ex["conv1"]["bits"] == 3
    # the packed file holds exactly the codes of the saved model: int * scale == its effective weight
    state = torch.load(out / "model_state.pt", weights_only=True)
    model = SmallResNet((4, 8, 8))
    prepare_model(model, "both", 3)
    model.load_state_dict(state)
    ref = export_quantized(model)
    assert set(ref) == set(ex) and all(torch.equal(ref[k]["int"], ex[k]["int"]) for k in ref)
    assert (out / "checkpoint" / "checkpoint.pt").exists() and (out / "finetune.jsonl").exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["missing.pt", "--method", "quant", "--bits", "4"], "missing.pt"),
        (["--method", "squash", "--bits", "4"], "method"),
        (["--method", "quant", "--bits", "0"], "bits"),
        (["--method", "prune", "--bits", "4", "--sparsity", "1.5"], "sparsity"),
    ],
)
def test_finetune_cli_bad_input_exits_2(args: list[str], needle: str, tmp_path: Path) -> None:
    res = run_pvq("finetune", *args, "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert needle in res.stderr


def test_finetune_cli_corrupt_checkpoint_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    res = run_pvq("finetune", str(bad), "--method", "quant", "--bits", "4", "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "bad.pt" in res.stderr


@needs_fmnist
def test_smoke_presets_run_end_to_end_in_under_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pvq import experiments

    n = torch.get_num_threads()
    monkeypatch.setenv("PVQ_CACHE", str(tmp_path / "cache"))
    try:
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        cfg = experiments.ReproduceConfig(preset="smoke", out=tmp_path / "out")
        result = experiments.get("table1")(cfg)
        cpu_s, wall_s = time.process_time() - t_cpu, time.perf_counter() - t_wall
    finally:
        torch.set_num_threads(n)
    rows = result.rows()
    assert {(r["method"], r["bits"]) for r in rows} == {
        ("none", 32),
        ("quant", 4),
        ("quant", 2),
        ("prune", 4),
        ("prune", 2),
    }
    for r in rows:
        if r["method"] == "prune":
            assert r["sparsity"] == pytest.approx(1 - r["bits"] / 16, abs=1e-3)
        assert r["split"] == "test" and 0 <= r["value"] <= 100
    # the learning rate was chosen on validation accuracy: the chosen one has the best val accuracy
    runs = [
        json.loads(line) for line in (tmp_path / "out" / "table1" / "runs.jsonl").read_text().splitlines()
    ]
    for r in rows[1:]:
        same = [x for x in runs if x["method"] == r["method"] and x["bits"] == r["bits"]]
        assert len(same) == 2 and r["val_accuracy"] == max(x["val_accuracy"] for x in same)
    assert cpu_s < 60.0, f"smoke preset took {cpu_s:.1f} s of CPU ({wall_s:.1f} s wall)"
    result.plot(tmp_path / "out" / "table1")
    assert (tmp_path / "out" / "table1" / "table1.png").exists()


@needs_fmnist
def test_finetune_baseline_is_labelled_and_can_be_finetuned(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = tmp_path / "net.pt"
    torch.save(SmallResNet((4, 8, 8)).state_dict(), src)  # untrained: fine-tuning must move its accuracy
    common = ["finetune", str(src), "--method", "quant", "--bits", "4", "--epochs", "1", "--train-size", "256",
              "--val-size", "64", "--test-size", "256", "--batch-size", "64", "--threads", "1"]
    plain = run_pvq(*common, "--out", str(tmp_path / "a"))
    assert plain.returncode == 0, plain.stderr
    assert "uncompressed, not fine-tuned (1 epoch fewer than the compressed model)" in plain.stderr
    tuned = run_pvq(*common, "--baseline-finetune", "--out", str(tmp_path / "b"), "--json")
    assert tuned.returncode == 0, tuned.stderr
    base, comp = json.loads(tuned.stdout)
    assert base["finetuned"] is True and base["epochs"] == comp["epochs"] == 1 and base["bits"] == 32
    assert base["baseline_label"] == "uncompressed, fine-tuned the same 1 epoch"
    saved = [json.loads(line) for line in (tmp_path / "a" / "finetune.jsonl").read_text().splitlines()]
    assert saved[0]["finetuned"] is False and "not fine-tuned" in saved[0]["baseline_label"]
    assert base["value"] != saved[0]["value"]  # the baseline was trained, not just relabelled
    assert comp["value"] == saved[1]["value"]  # the compressed run is unchanged by the flag
