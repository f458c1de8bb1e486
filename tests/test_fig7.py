"""`pvq reproduce fig7` smoke preset on bundled MobileNetV2: points, Spearman summary, plan never worse."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pvq.experiments import ReproduceConfig, get, names
from pvq.experiments.fig7 import FIG7_PRESETS, spearman_summary


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    before = torch.get_num_threads()
    out = tmp_path_factory.mktemp("fig7")
    try:
        result = get("fig7")(ReproduceConfig(preset="smoke", out=out))
    finally:
        torch.set_num_threads(before)
    return result, out


def test_registered() -> None:
    assert "fig7" in names()


def test_smoke_points_and_correlation(smoke) -> None:
    result, out = smoke
    spec = FIG7_PRESETS["smoke"][0]
    rows = result.rows()
    assert len(rows) == len(spec.layers) * len(spec.recipes)
    for r in rows:
        assert r["metric"] == "kl" and r["value"] >= 0 and math.isfinite(r["output_snr_db"])
    s = [
        x
        for x in result.meta["spearman"]
        if x["proxy"] == "output_snr_db" and x["family"] == "all" and x["metric"] == "kl"
    ]
    assert len(s) == 1 and s[0]["n"] == len(rows) and -1 <= s[0]["rho"] <= 1
    paths = result.plot(out / "fig7")
    assert {p.suffix for p in paths} == {".png", ".svg"}
    json.dumps(result.to_json(), allow_nan=True)


def test_smoke_plan_never_worse_than_uniform_on_mobilenet(smoke) -> None:
    """On bundled MobileNetV2, in the measured KL: the returned plan fits its budget and is no worse than every
    uniform baseline within it, each re-measured here without the cache."""
    from pvq.evaluate._sensitivity import make_probe, measure_plan
    from pvq.models import load_bundled
    from pvq.recipes import Plan, parse_recipe

    result, _ = smoke
    plans = result.meta["plans"]
    assert plans
    model, _ = load_bundled("mobilenet_v2")
    spec = FIG7_PRESETS["smoke"][0]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        probe = make_probe(model, "mobilenet_v2", n_views=spec.n_views)
        for d in plans:
            assert d["bits"] <= d["budget_bits"] + 1e-9 and d["never_worse"]
            got = measure_plan(model, Plan.from_json(d["plan"]), probe).value
            assert got == pytest.approx(d["value"], rel=1e-6, abs=1e-12)
            for u in d["uniforms"]:
                uv = measure_plan(
                    model, Plan({n: parse_recipe(u["recipe"]) for n in spec.layers}), probe
                ).value
                assert d["value"] <= uv + 1e-12
    finally:
        torch.set_num_threads(before)


def test_spearman_summary_signs() -> None:
    rows = [
        {
            "model": "m",
            "metric": "kl",
            "family": "quantization",
            "value": 10.0**-k,
            "agreement": None,
            "output_snr_db": 6.0 * k,
            "weight_snr_db": 6.0 * k + (1 if k % 2 else -1),
        }
        for k in range(6)
    ]
    s = {(x["proxy"], x["family"]): x for x in spearman_summary(rows)}
    assert s[("output_snr_db", "all")]["rho"] == pytest.approx(-1.0) and s[("output_snr_db", "all")]["n"] == 6
    assert ("output_snr_db", "pruning") not in s  # fewer than 3 points: no rho
