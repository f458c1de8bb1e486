"""Fig. 4's whole-row panel: chunked vs whole-row answers on the same rows, and how often the winner changes."""

from __future__ import annotations

import numpy as np
import pytest

from pvq.experiments import ReproduceConfig
from pvq.experiments._fig4_whole import whole_row_summary, whole_row_units
from pvq.layerwise import layer_scale


def _rows(rng, n, rows, block=None):
    X = rng.standard_normal((4 * n, n)) @ rng.standard_normal((n, n))
    G = X.T @ X
    if block is not None:  # no correlation across chunks: the problem separates
        mask = np.zeros((n, n), dtype=bool)
        for a in range(0, n, block):
            mask[a : a + block, a : a + block] = True
        G = np.where(mask, G, 0.0)
    W = rng.laplace(size=(rows, n)) * 0.1
    return G, W


def test_whole_row_answer_is_never_worse_than_the_chunked_one(rng):
    G, W = _rows(rng, 12, 3)
    scales = {b: layer_scale(W, b) for b in (2, 4)}
    recs = whole_row_units(G, W, [0, 1, 2], scales, [(0, 6), (6, 12)], (2, 4), time_limit=10.0)
    assert len(recs) == 6
    for r in recs:
        for m in ("prune", "quant"):
            assert r[f"{m}_whole"] <= r[f"{m}_chunked"] * (1 + 1e-12)
            assert r[f"{m}_whole_status"] == "optimal" and r[f"{m}_whole_gap"] == 0.0
        assert r["chunks_certified"]
        assert r["signal"] == pytest.approx(float(W[r["row_id"]] @ G @ W[r["row_id"]]))


def test_separable_quantization_has_the_same_chunked_and_whole_optimum(rng):
    """With G block-diagonal over the chunks, the whole-row integer least squares separates."""
    G, W = _rows(rng, 12, 2, block=6)
    scales = {3: layer_scale(W, 3)}
    for r in whole_row_units(G, W, [0, 1], scales, [(0, 6), (6, 12)], (3,), time_limit=10.0):
        assert r["quant_whole"] == pytest.approx(r["quant_chunked"], rel=1e-9, abs=1e-15)


def _u(layer, qc, pc, qw, pw):
    return {"layer": layer, "model": "m", "bits": 4, "n": 64, "signal": 10.0, "quant_chunked": qc,
            "prune_chunked": pc, "quant_whole": qw, "prune_whole": pw, "quant_whole_status": "optimal",
            "prune_whole_status": "time_limit", "quant_whole_gap": 0.0, "prune_whole_gap": 0.25,
            "chunks_certified": True}  # fmt: skip


def test_summary_counts_winner_changes():
    units = [
        _u("L", 1.0, 2.0, 0.9, 1.5),  # quantization wins both: no change
        _u("L", 1.0, 2.0, 1.0, 0.8),  # quantization -> pruning
        _u("L", 3.0, 2.0, 3.0, 1.0),  # pruning both
        _u("L", 2.0, 2.0, 2.0, 1.0),  # tie -> pruning
    ]
    (s,) = whole_row_summary(units)
    assert s["units"] == 4 and s["winner_changed"] == 2
    assert s["quant_wins_chunked"] == 2 and s["quant_wins_whole"] == 1
    lo, hi = s["winner_changed_ci95"]
    assert 0.0 < lo < 0.5 < hi < 1.0
    assert s["prune_whole_proved"] == 0 and s["quant_whole_proved"] == 4 and s["prune_whole_max_gap"] == 0.25
    assert s["pooled_prune_chunked_db"] == pytest.approx(10 * np.log10(40.0 / 8.0))


def test_plot_whole_rows_writes_png_and_svg(tmp_path):
    from pvq.report._fig_layers import plot_fig4_whole_rows

    units = [_u("L", 1.0, 2.0, 0.9, 1.5), _u("K", 1.0, 2.0, 1.0, 0.8)]
    paths = plot_fig4_whole_rows(whole_row_summary(units), units, tmp_path)
    assert {p.name for p in paths} == {"fig4_whole_rows.png", "fig4_whole_rows.svg"}


def test_config_records_whole_rows_only_when_set():
    assert "whole_rows" not in ReproduceConfig().to_json()
    assert ReproduceConfig(whole_rows=True).to_json()["whole_rows"] is True


@pytest.mark.slow
def test_fig4_smoke_with_whole_rows(tmp_path):
    from pvq.experiments import get
    from pvq.models import list_bundled

    if not any(m.name == "mobilenet_v2" and m.installed for m in list_bundled()):
        pytest.skip("mobilenet_v2 weights not installed")
    res = get("fig4")(ReproduceConfig(preset="smoke", out=tmp_path, whole_rows=True))
    whole = res.to_json()["meta"]["whole_rows"]
    assert whole["summary"] and {s["layer"] for s in whole["summary"]} == {"features.8.conv.0.0"}
    for u in whole["units"]:
        for m in ("prune", "quant"):
            assert u[f"{m}_whole"] <= u[f"{m}_chunked"] * (1 + 1e-12)
            assert u[f"{m}_whole_status"] == "optimal" or u[f"{m}_whole_gap"] > 0
    assert any(n.startswith("Whole rows, features.8.conv.0.0") for n in res.notes)
    names = {p.name for p in res.plot(tmp_path)}
    assert {"fig4.png", "fig4_whole_rows.png", "fig4_whole_rows.svg"} <= names
