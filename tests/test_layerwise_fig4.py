"""Fig. 4 reproduction: unit records, win fractions with Wilson intervals, pooled SNR, unit sampling
(every depthwise channel), heavy-tailed layer selection, the published per-chunk scale, the plots, and
(slow) the smoke preset end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pvq.experiments import ReproduceConfig, get
from pvq.experiments._fig4_select import HeavyLayer, rank_heavy_tailed, unit_width
from pvq.experiments._fig4_stats import compare_unit, layer_summary, unit_records, wilson_interval
from pvq.experiments.fig4 import _subproblems, sample_units


def _wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return mid - half, mid + half


@pytest.mark.parametrize("k,n", [(0, 10), (5, 10), (10, 10), (52, 96), (1, 3)])
def test_wilson_interval_matches_formula(k, n):
    lo, hi = wilson_interval(k, n)
    elo, ehi = _wilson_by_hand(k, n)
    assert lo == pytest.approx(max(0.0, elo), abs=1e-12) and hi == pytest.approx(min(1.0, ehi), abs=1e-12)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_known_values_and_bad_input():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775328), abs=1e-6)
    assert wilson_interval(5, 10) == pytest.approx((0.2365931, 0.7634069), abs=1e-6)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(4, 3)


def _unit(layer, chunk, bits, signal, q, p, qs="optimal", ps="optimal", **extra):
    return dict(
        layer=layer, chunk=chunk, row_id=chunk, bits=bits, n=9, signal=signal, quant_exact=q, prune_exact=p,
        quant_exact_status=qs, prune_exact_status=ps, **extra,
    )  # fmt: skip


def test_layer_summary_fractions_ties_pooled_snr_and_certification():
    units = [
        _unit("L", 0, 4, 10.0, 1.0, 2.0, prune_magnitude=3.0),  # quant better
        _unit("L", 1, 4, 20.0, 0.5, 4.0, prune_magnitude=5.0),  # quant better
        _unit("L", 2, 4, 30.0, 3.0, 1.0, qs="time_limit", prune_magnitude=1.0),  # prune better, not certified
        _unit("L", 3, 4, 40.0, 2.0, 2.0 * (1 + 1e-12), prune_magnitude=2.5),  # tie (round-off)
        _unit("L", 4, 4, 0.0, 0.0, 0.0, prune_magnitude=0.0),  # dead inputs: tie
        _unit("L", 0, 2, 10.0, 5.0, 1.0),  # another bit-width, kept apart
        {
            "layer": "L",
            "chunk": 9,
            "row_id": 9,
            "bits": 4,
            "n": 9,
            "signal": 1.0,
            "quant_exact": 1.0,
        },  # no prune
    ]
    (s4,) = [s for s in layer_summary(units, population={"L": 50}) if s["bits"] == 4]
    assert (s4["units"], s4["population"]) == (5, 50)
    assert (s4["quant_wins"], s4["prune_wins"], s4["ties"], s4["zero_signal"]) == (2, 1, 2, 1)
    assert s4["quant_win_frac"] == pytest.approx(0.4) and s4["tie_frac"] == pytest.approx(0.4)
    assert s4["quant_win_ci95"] == pytest.approx(list(_wilson_by_hand(2, 5)))
    assert s4["prune_win_ci95"] == pytest.approx(list(_wilson_by_hand(1, 5)))
    assert (s4["certified"], s4["time_limit"]) == (4, 1)
    sig = 100.0
    assert s4["pooled_quant_exact_db"] == pytest.approx(10 * math.log10(sig / 6.5))
    assert s4["pooled_prune_exact_db"] == pytest.approx(10 * math.log10(sig / (9.0 + 2e-12)))
    assert s4["pooled_prune_magnitude_db"] == pytest.approx(10 * math.log10(sig / 11.5))
    assert "pooled_quant_gptq_db" not in s4  # only solvers present on every unit are pooled
    (s2,) = [s for s in layer_summary(units) if s["bits"] == 2]
    assert (s2["units"], s2["prune_wins"]) == (1, 1) and "population" not in s2


def test_compare_unit():
    assert compare_unit(1.0, 2.0) == "quant" and compare_unit(2.0, 1.0) == "prune"
    assert compare_unit(1.0, 1.0 + 1e-13) == "tie" and compare_unit(0.0, 0.0) == "tie"


def test_unit_records_group_solver_rows():
    rows = []
    for m, s, kind, err in (("quant", "exact", "exact", 1.0), ("quant", "gptq", "heuristic", 1.5),
                            ("prune", "exact", "exact", 2.0), ("quant", "sdp", "bound", 0.7)):  # fmt: skip
        rows.append(dict(layer="L", chunk=3, row_id=7, n=9, bits=4, signal=8.0, method=m, solver=s, kind=kind,
                         error=err, seconds=0.25, status="optimal" if kind == "exact" else kind, gap=0.0))  # fmt: skip
    (rec,) = unit_records(rows, model="M", role="paper")
    assert rec["quant_exact"] == 1.0 and rec["quant_gptq"] == 1.5 and rec["prune_exact"] == 2.0
    assert (
        rec["quant_sdp"] == 0.7 and rec["quant_exact_status"] == "optimal" and "quant_gptq_status" not in rec
    )
    assert rec["quant_seconds"] == pytest.approx(0.75) and rec["model"] == "M" and rec["role"] == "paper"


def test_sample_units_depthwise_census_and_dense_sample():
    assert sample_units([1] * 7, 3, depthwise=True, seed=0) == [(c, 0) for c in range(7)]
    counts = [40, 40, 40]
    a = sample_units(counts, 25, depthwise=False, seed=5)
    assert len(a) == 25 == len(set(a)) and all(0 <= c < 3 and 0 <= r < 40 for c, r in a)
    assert a == sample_units(counts, 25, depthwise=False, seed=5) != sample_units(counts, 25, False, seed=6)
    assert sorted(sample_units([2, 3], 10, depthwise=False, seed=0)) == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
        (1, 2),
    ]


class _Depthwise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pw = nn.Conv2d(3, 6, 1)
        self.dw = nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False)

    def forward(self, x):
        return self.dw(torch.relu(self.pw(x)))


def test_depthwise_layer_gives_one_unit_per_channel_and_bits():
    from pvq.layerwise import capture_layer_problems, run_layer_problems

    torch.manual_seed(0)
    net = _Depthwise().eval()
    probs = capture_layer_problems(net, "dw", [torch.randn(2, 3, 6, 6)], opt_dim=32, bits=(2, 4))
    counts = [p.W.shape[0] for p in probs]
    assert counts == [1] * 6 and all(p.n == 9 for p in probs)
    pairs = sample_units(counts, units=2, depthwise=True, seed=0)  # a census, whatever `units` says
    solvers = {"prune": ("magnitude", "exact"), "quant": ("rtn", "exact")}
    rows = run_layer_problems(_subproblems(probs, pairs), (2, 4), solvers, 5.0, workers=1)
    recs = unit_records(rows)
    assert len(recs) == 6 * 2 and {r["row_id"] for r in recs} == set(range(6))
    (s2, s4) = layer_summary(recs)
    assert s2["units"] == s4["units"] == 6 and s2["certified"] == 6
    assert s2["quant_wins"] + s2["prune_wins"] + s2["ties"] == 6


def test_unit_width():
    assert unit_width((384, 1, 3, 3), 32) == 9  # depthwise: the whole 9-input row
    assert unit_width((480, 1, 5, 5), 32) == 25
    assert unit_width((64, 64, 3, 3), 32) == 36  # 4 channels x 3x3
    assert unit_width((96, 16, 1, 1), 32) == 16 and unit_width((384, 1536), 36) == 36
    assert unit_width((8, 4, 7, 7), 32) == 49  # one 7x7 channel is already wider than a chunk


def test_heavy_tailed_selection_by_kurtosis():
    from pvq.tensors import kurtosis

    rng = np.random.default_rng(0)

    def outliers(scale: float) -> np.ndarray:  # 0.1 % of the weights `scale` times larger
        x = rng.standard_normal(20000)
        x[:20] *= scale
        return x

    tensors = {
        "gauss": rng.standard_normal(20000),
        "laplace": rng.laplace(size=20000),
        "student3": outliers(10.0),
        "wide7x7": outliers(100.0),  # heaviest, but its rows do not fit
        "paper": outliers(40.0),  # already in Fig. 4
    }
    width = {"wide7x7": 49}
    cands = [HeavyLayer("m", k, kurtosis(v), (1,), width.get(k, 9)) for k, v in tensors.items()]
    k = {c.layer: c.kurtosis for c in cands}
    assert k["wide7x7"] > k["paper"] > k["student3"] > k["laplace"] > k["gauss"]
    picked = rank_heavy_tailed(cands, 2, exclude={"paper"}, max_n=36)
    assert [c.layer for c in picked] == ["student3", "laplace"]
    assert [c.layer for c in rank_heavy_tailed(cands, 1, max_n=64)] == ["wide7x7"]
    nan = HeavyLayer("m", "const", float("nan"), (1,), 9)
    assert rank_heavy_tailed([nan], 1) == []


def test_chunk_grid_scale_equals_published_grid_search():
    from pvq.layerwise._chunk_scale import chunk_grid_scale
    from pvq.tensors._reference import published_quant

    rng = np.random.default_rng(1)
    w = (0.05 * rng.standard_t(4, size=(12, 32))).astype(np.float32)
    for b in (2, 4, 8):
        ref = published_quant(torch.from_numpy(w), b)
        assert chunk_grid_scale(w, b) == pytest.approx(ref.step, rel=0, abs=0)


def test_capture_chunk_grid_scales_are_per_chunk():
    from pvq.layerwise import capture_layer_problems
    from pvq.tensors._reference import published_quant

    torch.manual_seed(3)
    lin = nn.Sequential(nn.Linear(24, 5))
    with torch.no_grad():
        lin[0].weight[:, 12:] *= 10.0  # the second chunk is ten times wider
    batches = [torch.randn(8, 24)]
    probs = capture_layer_problems(lin, "0", batches, opt_dim=12, bits=(3, 4), max_rows=2, scale="chunk-grid")
    W = lin[0].weight.detach().numpy()
    for p, (a, b) in zip(probs, [(0, 12), (12, 24)], strict=True):
        for bits in (3, 4):  # every row of the chunk enters its grid search, not only the sampled ones
            assert p.scales[bits] == published_quant(torch.from_numpy(W[:, a:b].copy()), bits).step
    assert probs[1].scales[4] > 5 * probs[0].scales[4]
    tensor = capture_layer_problems(lin, "0", batches, opt_dim=12, bits=(4,))
    assert tensor[0].scales == tensor[1].scales
    with pytest.raises(ValueError, match="scale"):
        capture_layer_problems(lin, "0", batches, opt_dim=12, bits=(4,), scale="row")


def test_reproduce_config_scale_option():
    assert ReproduceConfig(scale="chunk-grid").to_json()["scale"] == "chunk-grid"
    with pytest.raises(ValueError, match="scale"):
        ReproduceConfig(scale="channel")


def test_plots_write_png_and_svg(tmp_path):
    from pvq.report._fig_layers import plot_fig4

    units = [
        _unit("L", c, b, 10.0, 0.1 * (c + 1), 0.3, prune_magnitude=0.5) for c in range(4) for b in (2, 4)
    ]
    units += [_unit("D", c, b, 10.0, 0.4, 0.2) for c in range(3) for b in (2, 4)]
    paths = plot_fig4(layer_summary(units), units, tmp_path)
    assert {p.name for p in paths} == {"fig4.png", "fig4.svg", "fig4_fractions.png", "fig4_fractions.svg"}
    assert all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.slow
def test_fig4_smoke(tmp_path):
    from pvq.models import list_bundled

    if not any(m.name == "mobilenet_v2" and m.installed for m in list_bundled()):
        pytest.skip("mobilenet_v2 weights not installed")
    res = get("fig4")(ReproduceConfig(preset="smoke", out=tmp_path))
    rows = res.rows()
    assert rows and all(r["certified"] == r["units"] for r in rows)
    assert {r["role"] for r in rows} == {"paper", "heavy"}
    heavy = [m for m in res.to_json()["meta"]["layers"] if m["role"] == "heavy"]
    assert heavy and heavy[0]["depthwise"] and heavy[0]["units"] == heavy[0]["population"]
    assert any("quantization optimum better in" in n for n in res.notes)
    assert (tmp_path / "fig4" / "units.csv.gz").stat().st_size > 100
    assert len(res.plot(tmp_path)) == 4
