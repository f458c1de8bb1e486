"""Fig. 4 reproduction: the per-(layer, bits) summary, the plot, and (slow) the smoke preset end to end."""

from __future__ import annotations

import pytest

from pvq.experiments import ReproduceConfig, get
from pvq.experiments.fig4 import fig4_summary


def _row(chunk, method, solver, kind, snr_db, **extra):
    return dict(
        layer="L", chunk=chunk, bits=4, method=method, solver=solver, kind=kind, snr_db=snr_db, **extra
    )


def _rows():
    rows = []
    for chunk, (pq, pp) in enumerate([(20.0, 10.0), (9.0, 12.0)]):
        for method, exact, heur, hname in (
            ("quant", pq, pq - 1.0, "gptq"),
            ("prune", pp, pp - 2.0, "magnitude"),
        ):
            rows.append(_row(chunk, method, "exact", "exact", exact))
            rows.append(_row(chunk, method, hname, "heuristic", heur))
        for solver, kind, snr in (
            ("sdp", "bound", pq + 3),
            ("exact", "exact", pq),
            ("sdp_round", "heuristic", pq - 0.5),
        ):
            rows.append(_row(chunk, "quant", solver, kind, snr, subset="sdp"))
    return rows


def test_summary_fraction_and_offsets():
    (s,) = fig4_summary(_rows())
    assert s["chunks"] == 2 and s["quant_beats_prune"] == 0.5
    assert s["prune_magnitude_below_db"] == pytest.approx(2.0)
    assert s["quant_gptq_below_db"] == pytest.approx(1.0)
    assert s["sdp_bound_above_db"] == pytest.approx(3.0)
    assert s["quant_sdp_round_below_db"] == pytest.approx(0.5)


def test_plot_writes_png_and_svg(tmp_path):
    from pvq.report._fig_layers import plot_fig4

    paths = plot_fig4(_rows(), tmp_path)
    assert {p.suffix for p in paths} == {".png", ".svg"} and all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.slow
def test_fig4_smoke(tmp_path):
    from pvq.models import list_bundled

    if not any(m.name == "mobilenet_v2" and m.installed for m in list_bundled()):
        pytest.skip("mobilenet_v2 weights not installed")
    res = get("fig4")(ReproduceConfig(preset="smoke", out=tmp_path))
    rows = res.rows()
    assert rows and {r["method"] for r in rows} == {"prune", "quant"}
    exact = [r for r in rows if r["kind"] == "exact"]
    assert all(r["proved_optimal"] == r["rows"] for r in exact)
    assert any("beats pruning optimum" in n for n in res.notes)
    assert len(res.plot(tmp_path)) == 2
