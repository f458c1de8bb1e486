"""pvq.tensors.sweep: rows, extras, edge cases, resume; and the `pvq tensors` command."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from pvq._io import read_jsonl
from pvq.errors import PvqInputError
from pvq.tensors import nm_prune_sse, per_channel_prune_sse, sweep

DESIGN_KEYS = {
    "name",
    "shape",
    "bits",
    "kurtosis",
    "quant_snr_db",
    "quant_sparsity",
    "prune_snr_db",
    "prune_snr_corrected_db",
}


def _weights(rng: np.random.Generator) -> dict[str, torch.Tensor]:
    return {
        "conv.weight": torch.tensor(rng.normal(0, 0.1, (16, 8, 3, 3)), dtype=torch.float32),
        "fc.weight": torch.tensor(rng.standard_t(3, (10, 64)) * 0.05, dtype=torch.float32),
    }


def test_rows_have_design_keys_and_are_consistent(rng):
    res = sweep(_weights(rng), bits=[2, 4, 8])
    rows = res.rows()
    assert len(rows) == 6 and res.names() == ["conv.weight", "fc.weight"]
    for r in rows:
        assert DESIGN_KEYS <= set(r)
        assert r["winner"] == ("prune" if r["prune_snr_db"] > r["quant_snr_db"] else "quant")
        assert 0 <= r["quant_sparsity"] <= 1
        assert r["quant_snr_db"] == pytest.approx(
            10 * math.log10(r["signal_power"] / r["quant_mse"]), abs=1e-9
        )
    conv = [r for r in rows if r["name"] == "conv.weight"]
    assert [r["bits"] for r in conv] == [2, 4, 8] and conv[0]["shape"] == [16, 8, 3, 3]
    assert conv[0]["quant_snr_db"] < conv[1]["quant_snr_db"] < conv[2]["quant_snr_db"]
    summ = res.summary()
    assert [s["bits"] for s in summ] == [2, 4, 8] and summ[0]["tensors"] == 2


def test_gaussian_quantization_beats_pruning_at_8_bits(rng):
    # paper Fig. 2: for a Gaussian, INT8 ~ 40 dB while 50 % pruning ~ 11.5 dB
    from scipy.stats import norm

    row = sweep({"g": torch.tensor(rng.normal(size=20000), dtype=torch.float32)}, bits=[8]).rows()[0]
    assert row["quant_snr_db"] == pytest.approx(40.7, abs=0.5)
    a = norm.ppf(0.75)  # magnitude below which half the weights lie
    kept_out = (2 * norm.cdf(a) - 1) - 2 * a * norm.pdf(a)  # E[x^2; |x| < a]
    assert row["prune_snr_db"] == pytest.approx(-10 * math.log10(kept_out), abs=0.15)


def test_extras_columns(rng):
    w = _weights(rng)
    rows = sweep(
        w, bits=[4, 8], formats=["nf4", "fp8_e4m3", "fp"], per_channel=True, nm_patterns=[(2, 4), (1, 4)]
    ).rows()
    r4 = next(r for r in rows if r["name"] == "fc.weight" and r["bits"] == 4)
    r8 = next(r for r in rows if r["name"] == "fc.weight" and r["bits"] == 8)
    assert "quant_nf4_snr_db" in r4 and "quant_nf4_snr_db" not in r8
    assert "quant_fp8_e4m3_snr_db" in r8 and "quant_fp_snr_db" in r4
    assert r8["quant_per_channel_snr_db"] >= r8["quant_snr_db"] - 0.05  # per-channel scales help
    assert "prune_nm1_4_snr_db" in r4 and "prune_nm2_4_snr_db" in r8 and "prune_nm2_4_snr_db" not in r4
    assert r8["prune_nm2_4_snr_db"] <= r8["prune_snr_db"] + 1e-9  # structure costs accuracy
    assert r8["prune_per_channel_snr_db"] <= r8["prune_snr_db"] + 1e-9
    assert r8["prune_nm2_4_bits"] == 8.0


def test_count_overhead_moves_the_equal_size_point(rng):
    w = _weights(rng)
    plain = sweep(w, bits=[4]).rows()
    over = sweep(w, bits=[4], count_overhead=True, nm_patterns=[(1, 4)]).rows()
    for a, b in zip(plain, over, strict=True):
        assert b["prune_sparsity"] > a["prune_sparsity"]  # keep (b - 1)/16 instead of b/16
        assert b["prune_snr_db"] < a["prune_snr_db"]
        assert b["quant_snr_db"] == a["quant_snr_db"]
    assert over[0]["prune_nm1_4_bits"] == pytest.approx(4 + 2 / 4)  # ceil(log2 C(4,1)) / 4 metadata


def test_nm_and_per_channel_pruning_brute_force(rng):
    w = torch.tensor(rng.normal(size=(4, 8)), dtype=torch.float32)
    a = w.double().numpy()
    expect = sum(np.sort(g**2)[:2].sum() for g in a.reshape(-1, 4))
    assert nm_prune_sse(w, 2, 4) == pytest.approx(expect)
    assert per_channel_prune_sse(a, 0.5) == pytest.approx(sum(np.sort(r**2)[:4].sum() for r in a))


def test_edge_cases():
    const = sweep({"c": torch.full((8, 8), 0.25)}, bits=[2, 8]).rows()
    assert math.isnan(const[0]["kurtosis"]) and const[0]["quant_snr_db"] == math.inf
    zero = sweep({"z": torch.zeros(4, 4)}, bits=[4]).rows()[0]
    assert math.isnan(zero["quant_snr_db"]) and zero["quant_sparsity"] == 1.0
    one = sweep({"o": torch.tensor([0.5])}, bits=[4], range_search="grid").rows()[0]
    assert one["quant_snr_db"] == math.inf  # 0.5 = 7 * (0.5 + 0.5) * 50 / 100 / 7: on the grid
    assert one["prune_snr_db"] == math.inf  # floor(0.75 * 1) = 0 weights pruned
    with pytest.raises(PvqInputError, match="empty"):
        sweep({"e": torch.zeros(0)})
    with pytest.raises(PvqInputError, match="NaN"):
        sweep({"n": torch.tensor([1.0, float("inf")])})
    with pytest.raises(PvqInputError, match="bits"):
        sweep({"w": torch.ones(3)}, bits=[1])
    with pytest.raises(PvqInputError, match="range_search"):
        sweep({"w": torch.ones(3)}, range_search="golden")
    with pytest.raises(PvqInputError, match="formats"):
        sweep({"w": torch.ones(3)}, formats=["fp99"])
    with pytest.raises(PvqInputError):
        sweep(42)


def test_module_input(rng):
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert sweep(m, bits=[4]).names() == ["0.weight", "2.weight"]


def test_resume_skips_tensors_already_measured(tmp_path, rng):
    w = _weights(rng)
    path = tmp_path / "tensors.jsonl"
    first = sweep({"conv.weight": w["conv.weight"]}, bits=[4], resume_path=path)
    assert first.resumed == 0
    calls = []

    class Spy(dict):
        def __getitem__(self, k):
            calls.append(k)
            return super().__getitem__(k)

    again = sweep(Spy(w), bits=[4], resume_path=path)
    assert calls == ["fc.weight"] and again.resumed == 1
    assert again.rows()[0] == json.loads(json.dumps(first.rows()[0]))
    assert [r["name"] for r in read_jsonl(path)] == ["conv.weight", "fc.weight"]
    # a different configuration starts afresh
    fresh = sweep(w, bits=[2], resume_path=path)
    assert fresh.resumed == 0 and {r["bits"] for r in fresh.rows()} == {2}


def _pvq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pvq", "tensors", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_safetensors_json_csv_out(tmp_path, rng):
    f = tmp_path / "m.safetensors"
    save_file({k: v.contiguous() for k, v in _weights(rng).items()}, str(f))
    out = _pvq(
        str(f),
        "--bits",
        "4,8",
        "--range-search",
        "grid",
        "--json",
        "--csv",
        str(tmp_path / "r.csv"),
        "--out",
        str(tmp_path / "o"),
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 4 and DESIGN_KEYS <= set(rows[0])
    assert (tmp_path / "r.csv").read_text().splitlines()[0].startswith("name,shape,")
    assert (tmp_path / "o" / "tensors.jsonl").exists() and (tmp_path / "o" / "tensors.json").exists()
    text = _pvq(str(f), "--bits", "4")
    assert text.returncode == 0 and "prune wins" in text.stdout


def _pvq_inproc(capsys, *args: str) -> tuple[int, str]:
    from pvq.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["tensors", *args])
    return int(exc.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--bits", "0"], "--bits"),
        (["--range-search", "golden"], "--range-search"),
        (["--nm", "2-4"], "--nm"),
        (["--formats", "fp99"], "format"),
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path, capsys, args, needle):
    f = tmp_path / "m.safetensors"
    save_file({"fc.weight": torch.ones(4, 4)}, str(f))
    code, err = _pvq_inproc(capsys, str(f), *args)
    assert code == 2 and needle in err


def test_cli_missing_file_and_nan_tensor_exit_2(tmp_path, capsys):
    code, err = _pvq_inproc(capsys, str(tmp_path / "missing.safetensors"))
    assert code == 2 and "missing.safetensors" in err
    f = tmp_path / "nan.safetensors"
    save_file({"fc.weight": torch.tensor([[1.0, float("nan")], [0.5, 0.25]])}, str(f))
    code, err = _pvq_inproc(capsys, str(f))
    assert code == 2 and "NaN" in err
