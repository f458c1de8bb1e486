"""`pvq reproduce fig1|fig2|fig6`: rows, notes and PNG+SVG figures (smoke preset)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvq import experiments
from pvq.experiments import ReproduceConfig


def _run(name: str, tmp_path: Path):
    res = experiments.get(name)(ReproduceConfig(preset="smoke", out=tmp_path))
    paths = res.plot(tmp_path / name)
    assert {p.suffix for p in paths} == {".png", ".svg"}
    for p in paths:
        assert p.stat().st_size > 5000
    assert res.to_json()["notes"]
    return res


def test_fig1(tmp_path: Path) -> None:
    res = _run("fig1", tmp_path)
    rows = {r["bits"]: r for r in res.rows()}
    assert set(rows) == set(range(2, 9))
    assert rows[4]["quant_snr_db"] == pytest.approx(19.26, abs=0.02)
    assert rows[4]["prune_snr_db"] == pytest.approx(5.58, abs=0.02)
    assert rows[4]["quant_snr_narrow_db"] == pytest.approx(18.90, abs=0.02)
    assert all(r["winner"] == "quant" for r in rows.values())
    c = res.meta["curves"]
    assert sum(c["level_prob"]) == pytest.approx(1.0, abs=1e-12)


def test_fig2(tmp_path: Path) -> None:
    res = _run("fig2", tmp_path)
    rows = res.rows()
    assert {r["bits"] for r in rows} == set(range(2, 9))
    cross = res.meta["crossover_kurtosis"]
    # pruning wins first at the lowest bit-width, and the boundary moves right with more bits
    ks = [cross[str(b)] for b in range(2, 8) if cross[str(b)] is not None]
    assert cross["2"] is not None and 5 < cross["2"] < 15
    assert ks == sorted(ks)
    assert cross["8"] is None
    # pruning SNR rises with kurtosis, quantization SNR falls
    for b in (2, 8):
        pts = sorted((r["kurtosis"], r["quant_snr_db"], r["prune_snr_db"]) for r in rows if r["bits"] == b)
        assert pts[0][1] > pts[-1][1] and pts[0][2] < pts[-1][2]


def test_fig6(tmp_path: Path) -> None:
    res = _run("fig6", tmp_path)
    nu2 = sorted((r["R"], r["kurtosis"]) for r in res.rows() if r["nu"] == 2.0)
    assert nu2[0][1] == pytest.approx(1.8, abs=0.01)
    assert all(b[1] > a[1] for a, b in zip(nu2[:-1], nu2[1:], strict=True))
