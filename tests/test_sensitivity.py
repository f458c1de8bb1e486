"""Measured per-layer sensitivity and the plan that is never worse than uniform (pvq.evaluate._sensitivity)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from pvq.evaluate import evaluate
from pvq.evaluate._sensitivity import (
    make_probe,
    measure_plan,
    measure_sensitivity,
    measured_plan,
    model_key,
    uniform_bits,
)
from pvq.recipes import Plan, parse_recipe

RECIPES = ("int2:channel:rtn", "int3:channel:rtn", "int4:channel:rtn", "prune75:magnitude")
LAYERS = ("conv.weight", "fc.weight")


class ConvLinear(nn.Module):
    """The issue's new-user case: one conv and one linear layer (an architecture for a state dict)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 5, stride=4)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Many small forwards: one thread avoids oversubscribing CI's 2 shared cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny() -> tuple[nn.Module, object]:
    torch.manual_seed(0)
    src = ConvLinear()
    with torch.no_grad():
        src.fc.weight.mul_(8.0)  # confident logits, so that compression moves the KL measurably
    model = ConvLinear()  # a state dict loaded into its architecture, as a user brings it
    model.load_state_dict(src.state_dict())
    model.eval()
    probe = make_probe(model, "conv_linear", kind="image", n_views=12, image_size=(64, 72))
    return model, probe


def test_probe_kl_is_what_evaluate_measures(tiny) -> None:
    model, _ = tiny
    probe = make_probe(model, "conv_linear", kind="image")  # all 70 views at 224/256, as evaluate uses
    compressed = __import__("pvq.apply", fromlist=["apply"]).apply(model, "int3:channel:rtn").module
    mine = measure_plan(model, "int3:channel:rtn", probe)
    ev = evaluate(compressed, model, name="conv_linear", kind="image")
    assert mine.value == pytest.approx(ev.value("kl"), rel=1e-6, abs=1e-9)
    assert mine.agreement == pytest.approx(ev.value("agreement"))
    assert mine.value > 0


def test_single_layer_rows_and_output_snr(tiny) -> None:
    model, probe = tiny
    rows = measure_sensitivity(model, probe, RECIPES, layers=LAYERS)
    assert [(r.layer, r.recipe) for r in rows] == [(n, r) for n in LAYERS for r in RECIPES]
    q = {(r.layer, r.recipe): r for r in rows}
    for n in LAYERS:  # more bits: higher weight SNR and output SNR, a smaller change
        a, b = q[(n, "int2:channel:rtn")], q[(n, "int4:channel:rtn")]
        assert b.weight_snr_db > a.weight_snr_db + 6
        assert b.output_snr_db > a.output_snr_db + 6
        assert b.value < a.value
    # the fc layer's output SNR by hand: the compressed layer on the uncompressed conv's output
    from pvq.apply import apply

    cm = apply(model, Plan({"fc.weight": parse_recipe("int2:channel:rtn")}))
    with torch.no_grad():
        h = torch.relu(model.conv(probe.inputs)).mean((2, 3))
        y, y2 = model.fc(h).double(), cm.module.fc(h).double()
    by_hand = 10 * math.log10(float((y**2).sum()) / float(((y - y2) ** 2).sum()))
    assert q[("fc.weight", "int2:channel:rtn")].output_snr_db == pytest.approx(by_hand, rel=1e-6)


def test_cache_resumes_and_is_keyed_on_model_content(tiny, tmp_path) -> None:
    model, probe = tiny
    cache = tmp_path / "m.jsonl"
    first = measure_sensitivity(model, probe, RECIPES[:2], layers=LAYERS, cache=cache)
    lines = cache.read_text().count("\n")
    assert lines == 4
    again = measure_sensitivity(model, probe, RECIPES[:2], layers=LAYERS, cache=cache)
    assert again == first and cache.read_text().count("\n") == lines  # nothing recomputed
    other = ConvLinear()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.fc.bias.add_(1.0)
    assert model_key(other) != model_key(model)
    measure_sensitivity(other, replace(probe), RECIPES[:1], layers=LAYERS[:1], cache=cache)
    assert cache.read_text().count("\n") == lines + 1  # a different model is measured afresh


@pytest.mark.parametrize("budget_recipe", ["int2:channel:rtn", "int3:channel:rtn", "int4:channel:rtn"])
def test_plan_never_worse_than_any_uniform(tiny, budget_recipe) -> None:
    model, probe = tiny
    rows = measure_sensitivity(model, probe, RECIPES, layers=LAYERS)
    shapes = {n: tuple(model.get_parameter(n).shape) for n in LAYERS}
    budget = uniform_bits(budget_recipe, shapes)
    d = measured_plan(model, probe, rows, budget)
    assert d.bits <= budget + 1e-9
    # every uniform within the budget measured independently (no cache): the plan is never worse
    fits = [r for r in RECIPES if uniform_bits(r, shapes) <= budget + 1e-9]
    assert budget_recipe in fits
    for r in fits:
        u = measure_plan(model, Plan({n: parse_recipe(r) for n in LAYERS}), probe).value
        assert d.value <= u + 1e-12, (r, u, d.to_json())
    # and the returned value is the plan's own measurement
    assert measure_plan(model, d.plan, probe).value == pytest.approx(d.value)


def test_misleading_sensitivities_fall_back_to_the_better_uniform(tiny) -> None:
    """When additivity (here: deliberately wrong sensitivities) makes the knapsack's plan measure worse than a
    uniform baseline, that uniform is returned."""
    model, probe = tiny
    rows = measure_sensitivity(model, probe, RECIPES[:3], layers=LAYERS)
    lying = [replace(r, value=0.0 if r.recipe == "int2:channel:rtn" else r.value) for r in rows]
    shapes = {n: tuple(model.get_parameter(n).shape) for n in LAYERS}
    d = measured_plan(model, probe, lying, uniform_bits("int4:channel:rtn", shapes))
    assert d.knapsack_value > d.value
    assert d.chosen == "uniform int4:channel:rtn"
    assert d.value == pytest.approx(min(u[2] for u in d.uniforms))
