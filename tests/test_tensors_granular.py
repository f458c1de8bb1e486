"""Granularity in the per-tensor comparison: quantization per tensor / channel / group (and with zero points)
against magnitude pruning at equal *real* bits per weight (pvq.tensors._granular, sweep, CLI, compare)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pvq.errors import PvqInputError
from pvq.recipes import recipe_bits
from pvq.tensors import (
    Granularity,
    SortedTensor,
    SweepConfig,
    granularity_summary,
    int_levels,
    optimal_scale,
    parse_granularities,
    sweep,
)


def _rows_of_different_scales(rows: int = 64, cols: int = 256, seed: int = 0) -> torch.Tensor:
    """Gaussian rows whose standard deviations span three decades (as some real layers' rows do)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g) * torch.logspace(-2, 1, rows)[:, None]


def _snr(w: np.ndarray, sse: float) -> float:
    return 10 * math.log10(float((w.astype(np.float64) ** 2).sum()) / sse)


@pytest.fixture(scope="module")
def row4() -> dict:
    w = _rows_of_different_scales()
    return sweep({"w": w}, bits=[4], granularities="tensor,channel,g128,uint:g128").rows()[0]


def test_per_channel_beats_per_tensor_on_rows_of_different_scales(row4: dict) -> None:
    # one scale for rows whose ranges differ 1000x wastes the grid on the small rows: > 4 dB lost
    assert row4["channel_quant_snr_db"] > row4["tensor_quant_snr_db"] + 4.0
    assert row4["g128_quant_snr_db"] >= row4["channel_quant_snr_db"] - 0.05  # finer groups: no worse
    assert row4["uint_g128_quant_snr_db"] >= row4["g128_quant_snr_db"] - 0.05  # 16 levels used, not 15


def test_channel_snr_between_absmax_and_certified_optimum(row4: dict) -> None:
    """The MSE scale search is at least as good as absmax per row and no better than the certified per-row
    optimum (both computed here independently of pvq.apply)."""
    w = _rows_of_different_scales().numpy().astype(np.float64)
    lv = int_levels(4)
    s_abs = np.abs(w).max(axis=1) / 7.0  # absmax scale per row: max |w| -> level 7
    q = np.clip(np.rint(w / s_abs[:, None]), -8, 7) * s_abs[:, None]
    snr_absmax = _snr(w, float(((w - q) ** 2).sum()))
    sse_opt = sum(optimal_scale(SortedTensor.from_tensor(r.astype(np.float32)), lv).sse for r in w)
    snr_opt = _snr(w, sse_opt)
    assert snr_absmax - 0.02 <= row4["channel_quant_snr_db"] <= snr_opt + 0.02  # 0.02 dB: FP16 scales
    assert snr_opt - row4["channel_quant_snr_db"] < 0.2  # and close to the optimum


def test_real_bits_include_scales_zero_points_and_mask(row4: dict) -> None:
    shape = (64, 256)
    assert row4["channel_bits"] == pytest.approx(4 + 16 / 256)  # one FP16 scale per row of 256
    assert row4["g128_bits"] == pytest.approx(4 + 16 / 128)  # one FP16 scale per 128 weights
    # + packed 4-bit zero points: 8 per int32 along the output dim, one int32 column per group column
    assert row4["uint_g128_bits"] == pytest.approx(4 + 16 / 128 + 32 * (64 // 8) * 2 / (64 * 256))
    assert row4["tensor_bits"] == pytest.approx(4 + 16 / (64 * 256))
    for key, recipe in (("channel", "int4:channel:rtn"), ("uint_g128", "uint4:g128:rtn")):
        assert row4[f"{key}_bits"] == recipe_bits(recipe, shape).total  # the one accounting, not a copy
    # pruning gets the same real bits: FP16 values + a bitmask (1 bit/weight + an int64 offset per row)
    mask = 1 + 64 / 256
    keep = (row4["channel_bits"] - mask) / 16
    assert row4["channel_prune_sparsity"] == pytest.approx(1 - keep, abs=1 / (64 * 256))
    w = _rows_of_different_scales().reshape(-1).double()
    n_zero = int((1 - keep) * w.numel())
    sq = torch.sort(w.square()).values
    expect = 10 * math.log10(float(sq.sum()) / float(sq[:n_zero].sum()))
    assert row4["channel_prune_snr_db"] == pytest.approx(expect, abs=1e-9)
    # the paper's mask-free column is still there: pruning at keep b/16, which is more than keep above
    assert row4["prune_snr_db"] > row4["channel_prune_snr_db"]


def test_tensor_granularity_is_the_papers_quantization(row4: dict) -> None:
    assert row4["tensor_quant_snr_db"] == row4["quant_snr_db"]  # same scale; only the bits differ
    assert row4["tensor_winner"] == ("prune" if row4["tensor_prune_snr_db"] > row4["quant_snr_db"] else "quant")


def test_uint_tensor_never_below_the_signed_grid() -> None:
    """A zero point 2^(b-1) turns the uint grid into the signed one, so uint per tensor is at least the certified
    signed per-tensor SNR, also on a tensor with one outlier 100 sigma out (the best grid clips it; pvq apply's
    rtn clipping grid stops at 0.1 of the range and loses ~4 dB there)."""
    from pvq.apply._algorithms import quantize_rtn
    from pvq.recipes import Quant

    g = torch.Generator().manual_seed(3)
    w = torch.randn(256, 512, generator=g)
    w[0, 0] = 100.0
    r = sweep({"w": w}, bits=[4], granularities="uint:tensor").rows()[0]
    *_, deq = quantize_rtn(w, Quant("uint4", 0, "rtn"))
    rtn_only = 10 * math.log10(float(w.double().square().sum() / (w - deq).double().square().sum()))
    assert rtn_only < r["quant_snr_db"] - 1.0  # the case the fallback is for
    assert r["uint_tensor_quant_snr_db"] >= r["quant_snr_db"]


def test_default_sweep_has_no_granularity_columns_and_the_same_key() -> None:
    w = _rows_of_different_scales(8, 32)
    rows = sweep({"w": w}, bits=[4]).rows()
    assert not any(k.endswith("_bits") for k in rows[0])
    assert "granularity" not in SweepConfig().to_json()  # folders made before it resume as before


def test_bits_outside_the_recipe_formats_get_no_columns() -> None:
    w = _rows_of_different_scales(8, 32)
    rows = sweep({"w": w}, bits=[8, 12], granularities="channel").rows()
    assert "channel_quant_snr_db" in rows[0] and "channel_quant_snr_db" not in rows[1]


def test_parse_granularities() -> None:
    got = parse_granularities("tensor, channel,g128,uint:g32,int:channel,g128")
    assert [g.label for g in got] == ["tensor", "channel", "g128", "uint:g32"]
    assert got[3] == Granularity(32, True) and got[3].recipe(4) == "uint4:g32:rtn" and got[3].key == "uint_g32"
    assert parse_granularities("") == ()
    for bad in ("row", "g1", "g5000", "fp8:channel", "channel:g128"):
        with pytest.raises(PvqInputError, match="--granularity"):
            parse_granularities(bad)


def test_cache_key_differs_by_granularity(tmp_path: Path) -> None:
    w = {"a": _rows_of_different_scales(8, 32), "b": _rows_of_different_scales(4, 64, seed=1)}
    keys = {
        json.dumps(SweepConfig(granularities=g).to_json(), sort_keys=True)
        for g in ((), ("channel",), ("g128",), ("uint:g128",))
    }
    assert len(keys) == 4
    path = tmp_path / "tensors.jsonl"
    first = sweep(w, bits=[4], granularities="channel", resume_path=path)
    assert first.resumed == 0
    again = sweep(w, bits=[4], granularities="channel", resume_path=path)
    assert again.resumed == 2 and again.rows() == first.rows()
    other = sweep(w, bits=[4], granularities="g128", resume_path=path)  # another key: measured afresh
    assert other.resumed == 0 and "g128_quant_snr_db" in other.rows()[0]
    assert "channel_quant_snr_db" not in other.rows()[0]


def test_compare_partial_key_includes_granularity(tmp_path: Path) -> None:
    from dataclasses import replace

    from pvq._outdir import open_output
    from pvq.compare import CompareConfig
    from pvq.compare._run import _prepare_out

    cfg = CompareConfig(source="m.pt", out=tmp_path, layers=0)
    assert cfg.granularity == ("tensor", "channel", "g128")
    other = replace(cfg, granularity=("channel",)).fingerprint()
    assert cfg.fingerprint()["tensors.jsonl"] != other["tensors.jsonl"]
    assert cfg.fingerprint()["layers.jsonl"] == other["layers.jsonl"]  # layer rows do not depend on it
    with open_output(tmp_path) as folder:
        part = _prepare_out(cfg, folder)
        (part / "tensors.jsonl").write_text("{}\n")
        _prepare_out(cfg, folder)
        with pytest.raises(PvqInputError, match="differs in: granularity"):
            _prepare_out(replace(cfg, granularity=("uint:g128",)), folder)
    with pytest.raises(PvqInputError, match="--granularity"):
        CompareConfig(granularity=("g0",))


def test_summary_counts_and_wilson_interval() -> None:
    g = parse_granularities("channel")
    rows = [
        {"bits": 4, "numel": 10, "channel_bits": 4.5, "channel_quant_snr_db": q, "channel_prune_snr_db": p,
         "channel_prune_sparsity": 0.9,
         "prune_snr_db": pp}
        for q, p, pp in [(20.0, 5.0, 25.0)] * 45 + [(3.0, 5.0, 2.0)] * 8
    ]  # fmt: skip
    (s,) = granularity_summary(rows, g)
    assert (s["tensors"], s["quant_wins"], s["quant_wins_paper"], s["prune_keeps_nothing"]) == (53, 45, 8, 0)
    assert s["recipe"] == "int4:channel:rtn" and s["mean_real_bits"] == pytest.approx(4.5)
    # Wilson 95 % for 45/53: closed form with z = 1.959964
    z, n, p = 1.959963984540054, 53, 45 / 53
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (s["quant_win_low"], s["quant_win_high"]) == pytest.approx((c - h, c + h), abs=1e-9)


def _run_pvq(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``pvq ARGS`` in this process: (exit code, stdout, stderr)."""
    from pvq._progress import enable_progress
    from pvq.cli import main

    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        enable_progress(False)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_tensors_granularity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 64), torch.nn.Linear(64, 32))
    with torch.no_grad():
        model[0].weight.copy_(_rows_of_different_scales())
    src = tmp_path / "m.pt"
    torch.save(model.state_dict(), src)
    code, out, err = _run_pvq(
        "tensors", src, "--bits", "4", "--granularity", "channel,uint:g32", "--out", tmp_path / "o", capsys=capsys
    )
    assert code == 0, err
    assert "equal real bits" in out and "int4:channel:rtn" in out and "uint4:g32:rtn" in out
    doc = json.loads((tmp_path / "o" / "tensors.json").read_text())
    assert {s["granularity"] for s in doc["by_granularity"]} == {"channel", "uint:g32"}
    assert doc["config"]["granularity"] == ["channel", "uint:g32"]
    assert all("uint_g32_bits" in r for r in doc["rows"])
    key = json.loads((tmp_path / "o" / "tensors.jsonl.key.json").read_text())
    assert key["granularity"] == ["channel", "uint:g32"]
    code, _, err = _run_pvq("tensors", src, "--granularity", "rows", capsys=capsys)
    assert code == 2 and err.strip().startswith("pvq: error: --granularity")
    assert len(err.strip().splitlines()) == 1


def test_compare_granularity_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --granularity stops `pvq compare` before any work; the default reaching the outputs is checked
    on test_compare_cli's run (granularity.json, summary.json, the report's table)."""
    code, _, err = _run_pvq("compare", "mobilenet_v2", "--granularity", "channel,g1", "--out", tmp_path / "o", capsys=capsys)
    assert code == 2 and err.strip().startswith("pvq: error: --granularity") and "'g1'" in err
    assert not (tmp_path / "o").exists()


def test_compare_result_carries_granularity(tmp_path: Path) -> None:
    from pvq.compare import CompareConfig, run_compare
    from pvq.compare._text import verdict_text

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 64), torch.nn.Linear(64, 32))
    with torch.no_grad():
        model[0].weight.copy_(_rows_of_different_scales())
    src = tmp_path / "m.pt"
    torch.save(model.state_dict(), src)
    cfg = CompareConfig(source=str(src), bits=(4,), out=tmp_path / "c", layers=0, eval=False, granularity=("tensor", "channel"))
    res = run_compare(cfg)
    by = res.granularity_summary
    assert [(r["granularity"], r["bits"], r["tensors"]) for r in by] == [("tensor", 4, 2), ("channel", 4, 2)]
    rows = {r["name"]: r for r in res.tensor_rows()}
    assert rows["0.weight"]["channel_quant_snr_db"] > rows["0.weight"]["tensor_quant_snr_db"] + 4.0
    assert any("equal real bits per weight" in p for p in verdict_text(res).points)
