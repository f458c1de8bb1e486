"""fig3 / table2 reproductions and the published per-tensor data they use."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pvq.tensors._kde import win_density
from pvq.tensors._published import PAPER_TABLE2, load_published


@pytest.fixture(scope="module")
def published() -> list[dict]:
    return load_published()


def test_published_data_shape_and_kurtosis_convention(published):
    assert len({r["model"] for r in published}) == 44
    for b in range(2, 9):
        assert sum(r["bits"] == b for r in published) == 2651
    # Pearson kurtosis is >= 1 for any distribution; FP16 underflow gave impossible values -> nan
    assert min(r["kurtosis"] for r in published if not math.isnan(r["kurtosis"])) >= 1.0
    bad = {(r["model"], r["name"]) for r in published if r["kurtosis_fp16_invalid"]}
    assert bad and all(math.isnan(r["kurtosis"]) for r in published if (r["model"], r["name"]) in bad)
    # the FP16 quirk: pruning MSE rounded to zero gives infinite pruning SNR
    assert any(r["prune_fp16_zero"] and math.isinf(r["prune_snr_db"]) for r in published)


def test_published_data_recomputes_paper_table2(published):
    for b, pct in PAPER_TABLE2.items():
        rs = [r["quant_sparsity"] for r in published if r["bits"] == b]
        assert 100 * sum(rs) / len(rs) == pytest.approx(pct, abs=0.7)  # the paper rounds to whole percent


def test_published_json_folder_matches_bundle(shared_dir):
    folder = shared_dir / "reference" / "model_zoo_weights_sqnr"
    if not folder.is_dir():
        pytest.skip("reference JSON folder not present")
    assert load_published(folder, models=["resnet18"]) == load_published(models=["resnet18"])


def test_published_pruning_wins_grow_at_low_bits(published):
    # paper Fig. 3 left: pruning becomes more beneficial at lower bit-widths
    frac = {}
    for b in (2, 4, 8):
        rs = [r for r in published if r["bits"] == b and math.isfinite(r["prune_snr_db"])]
        frac[b] = sum(r["prune_snr_db"] > r["quant_snr_db"] for r in rs) / len(rs)
    assert frac[2] > frac[4] > frac[8]


def test_win_density_finds_high_kurtosis_region():
    rng = np.random.default_rng(0)
    k = 10 ** rng.uniform(0.5, 2.0, 4000)
    wins = k > 30  # pruning wins exactly for heavy-tailed tensors
    wd = win_density(k, wins)
    assert 15 < wd.crossover() < 45
    assert wd.prob_prune[wd.kurtosis > 60].min() > 0.9 and wd.prob_prune[wd.kurtosis < 8].max() < 0.1
    total = np.trapezoid(wd.p_prune + wd.p_quant, np.log10(wd.kurtosis))
    assert total == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("name", ["fig3", "table2"])
def test_reproduce_smoke(tmp_path, name):
    from pvq import experiments
    from pvq.models import list_bundled

    if not any(b.name == "mobilenet_v2" and b.installed for b in list_bundled()):
        pytest.skip("MobileNetV2 weights not installed")
    cfg = experiments.ReproduceConfig(preset="smoke", out=tmp_path)
    res = experiments.get(name)(cfg)
    rows = res.rows()
    assert rows and res.notes
    paths = res.plot(tmp_path / name)
    assert {p.suffix for p in paths} == {".png", ".svg"} and all(p.stat().st_size > 1000 for p in paths)
    if name == "table2":
        mine = [r for r in rows if r["source"] == "pvq mobilenet_v2" and r["range_search"] == "grid"]
        assert [r["bits"] for r in mine] == [8, 7, 6, 5, 4, 3, 2]
        sp = [r["avg_quant_sparsity_percent"] for r in mine]
        assert sp == sorted(sp)  # fewer bits, more zeros
    else:
        groups = {r["group"] for r in rows}
        assert {"paper model zoo", "pvq bundled", "pvq mobilenet_v2"} <= groups


def test_published_kurtosis_where_pruning_wins_rises_with_bits(published):
    # paper Fig. 3 right (and Fig. 2 theory): the more bits, the heavier the tails must be for pruning to win
    cross = {}
    for b in (2, 4, 6):
        rs = [r for r in published if r["bits"] == b and math.isfinite(r["prune_snr_db"])]
        wd = win_density([r["kurtosis"] for r in rs], [r["prune_snr_db"] > r["quant_snr_db"] for r in rs])
        cross[b] = wd.crossover()
    assert 8 < cross[2] < cross[4] < cross[6] < 200
