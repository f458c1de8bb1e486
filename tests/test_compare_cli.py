"""`pvq compare` end to end on a small model saved as a .pt state dict, its bad inputs, and resuming."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn


def run_pvq(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pvq", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )


def tiny_state_dict(path: Path) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(64, 10))
    with torch.no_grad():  # one heavy-tailed layer, so that the verdict is not uniform
        model[2].weight.copy_(torch.distributions.StudentT(2.0).sample(model[2].weight.shape))
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("compare")
    src = tiny_state_dict(tmp / "tiny.pt")
    out = tmp / "report"
    res = run_pvq("compare", str(src), "--bits", "2,4,8", "--out", str(out), "--quiet")
    return out, res


def test_compare_tiny_state_dict(tiny_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, res = tiny_run
    assert res.returncode == 0, res.stderr
    assert "Verdict" in res.stdout
    page = (out / "index.html").read_text()
    assert "calibration skipped" in page  # a bare state dict: no layer-wise comparison, said so
    rows = json.loads((out / "tensors.json").read_text())
    assert {r["name"] for r in rows} == {"0.weight", "2.weight", "4.weight"}
    assert {r["bits"] for r in rows} == {2, 4, 8}
    for key in (
        "name",
        "shape",
        "bits",
        "kurtosis",
        "quant_snr_db",
        "quant_sparsity",
        "prune_snr_db",
        "prune_snr_corrected_db",
    ):
        assert key in rows[0]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["bits"] == [2, 4, 8] and "pvq_version" in cfg
    alloc = json.loads((out / "allocation.json").read_text())
    numel = {r["name"]: r["numel"] for r in alloc}
    used = sum(r["bits_per_weight"] * numel[r["name"]] for r in alloc) / sum(numel.values())
    assert used <= 4.0 + 1e-9  # the default budget holds, overhead included
    assert (out / "figures" / "snr_scatter.png").exists() and (out / "figures" / "snr_scatter.svg").exists()
    # the default granularities: quantization per tensor/channel/g128 vs pruning at equal real bits
    by = json.loads((out / "granularity.json").read_text())
    assert {(r["granularity"], r["bits"]) for r in by} == {(g, b) for g in ("tensor", "channel", "g128") for b in (2, 4, 8)}
    assert json.loads((out / "summary.json").read_text())["by_granularity"] == by
    assert cfg["granularity"] == ["tensor", "channel", "g128"]
    assert "tbl-granularity" in page and all("channel_bits" in r for r in rows)


def test_compare_resumes(tiny_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, first = tiny_run
    assert first.returncode == 0
    part = out / "partial" / "tensors.jsonl"
    lines = part.read_text().splitlines()
    part.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])  # as if killed mid-write
    res = run_pvq("compare", str(out.parent / "tiny.pt"), "--bits", "2,4,8", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert f"resuming: {len(lines) - 1} of {len(lines)} tensors" in res.stderr
    assert len(json.loads((out / "tensors.json").read_text())) == 3 * len(lines)


def _one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 2, (res.stdout, res.stderr)
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pvq: error:"), res.stderr
    for n in needles:
        assert n in err[0]


def test_unreadable_model(tmp_path: Path) -> None:
    _one_line_error(
        run_pvq("compare", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o")), "missing.pt"
    )
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"this is not a checkpoint")
    _one_line_error(run_pvq("compare", str(bad), "--out", str(tmp_path / "o")), "corrupt.pt")


def test_no_conv_linear_weights(tmp_path: Path) -> None:
    p = tmp_path / "norms.pt"
    torch.save({"bn.weight": torch.ones(8), "bn.bias": torch.zeros(8)}, p)
    _one_line_error(run_pvq("compare", str(p), "--out", str(tmp_path / "o")), "norms.pt")


def test_bits_zero(tmp_path: Path) -> None:
    _one_line_error(run_pvq("compare", "--bits", "0", "--out", str(tmp_path / "o")), "--bits")


def test_data_folder_without_images(tmp_path: Path) -> None:
    d = tmp_path / "data"
    d.mkdir()
    (d / "notes.txt").write_text("not an image")
    src = tiny_state_dict(tmp_path / "tiny.pt")
    _one_line_error(run_pvq("compare", str(src), "--data", str(d), "--out", str(tmp_path / "o")), "no images")
    _one_line_error(
        run_pvq("compare", str(src), "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")), "--data"
    )


def test_compare_report_in_headless_browser(
    tiny_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    from test_report_html import CHROMIUM, REPO, check_in_browser

    if CHROMIUM is None:
        pytest.skip("chromium not installed (scripts/install_system.sh installs it)")
    out, res = tiny_run
    assert res.returncode == 0, res.stderr
    check_in_browser(out / "index.html", tmp_path, REPO / "test-artifacts" / "report_tiny_pt.png")


def test_partial_results_refused_only_when_their_inputs_change(tmp_path: Path) -> None:
    from dataclasses import replace

    from pvq._outdir import open_output
    from pvq.compare import CompareConfig
    from pvq.compare._run import _prepare_out
    from pvq.errors import PvqInputError

    cfg = CompareConfig(source="m.pt", out=tmp_path)
    with open_output(tmp_path) as folder:
        part = _prepare_out(cfg, folder)
        for f in ("tensors.jsonl", "layers.jsonl"):
            (part / f).write_text("{}\n")
        _prepare_out(replace(cfg, budget="3", layer_time_s=5.0), folder)  # neither changes a partial row
        with pytest.raises(PvqInputError, match="layers.jsonl was made from other inputs"):
            _prepare_out(replace(cfg, data="imgs"), folder)  # new calibration data: the layer rows differ
        (part / "layers.jsonl").unlink()  # as the message says: delete it to start it afresh
        _prepare_out(replace(cfg, data="imgs"), folder)
        with pytest.raises(PvqInputError, match="tensors.jsonl was made from other inputs"):
            _prepare_out(replace(cfg, bits=(4,), data="imgs"), folder)  # new bit-widths
        assert (part / "tensors.jsonl").read_text() == "{}\n"  # refused, not discarded
