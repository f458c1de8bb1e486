"""The recipe grammar: canonical round trip, clear errors, real bits per weight by hand."""

from __future__ import annotations

import json

import pytest

from pvq.errors import PvqInputError
from pvq.recipes import GRAMMAR, Plan, load_plan, parse_recipe, recipe_bits

CANONICAL = [
    "none",
    "int8:channel:rtn",
    "int4:g128:gptq",
    "uint4:g32:rtn",
    "nf4:g64:rtn",
    "fp8:channel:rtn",
    "int4:tensor:absmax",
    "prune50:magnitude",
    "prune75:sparsegpt",
    "prune50:wanda",
    "2:4:sparsegpt",
    "4:8:magnitude",
    "prune50:sparsegpt+int4:g128:gptq",
    "int4:g128:gptq:damp=0.1:order=natural",
]


@pytest.mark.parametrize("text", CANONICAL)
def test_canonical_round_trip(text: str) -> None:
    r = parse_recipe(text)
    assert str(r) == text
    assert parse_recipe(str(r)) == r


def test_aliases_and_defaults_normalise() -> None:
    assert str(parse_recipe("int4:tensor:mse")) == "int4:tensor:rtn"
    assert str(parse_recipe("INT4:G128:GPTQ:damp=0.01:order=act")) == "int4:g128:gptq"
    assert parse_recipe("int4:g128:gptq").quant.option("damp") == "0.01"


@pytest.mark.parametrize(
    "bad",
    ["", "int9:channel:rtn", "int4:g1:rtn", "int4:channel", "prune0:magnitude", "prune100:wanda", "2:4",
     "3:2:wanda", "int4:channel:rtn+prune50:magnitude", "prune50:wanda+prune25:magnitude",
     "int4:g128:gptq:foo=1", "int4:g128:gptq:damp=x", "int4:g128:gptq:order=random", "prune50:obd"],
)
def test_bad_recipes_name_the_grammar(bad: str) -> None:
    with pytest.raises(PvqInputError) as exc:
        parse_recipe(bad)
    assert GRAMMAR in str(exc.value)


def test_bits_by_hand() -> None:
    shape = (64, 256)
    assert recipe_bits("none", shape).total == 16.0
    assert recipe_bits("int4:tensor:rtn", shape).total == pytest.approx(4 + 16 / (64 * 256))
    assert recipe_bits("int8:channel:rtn", shape).total == pytest.approx(8 + 16 / 256)
    assert recipe_bits("int4:g128:gptq", shape).total == pytest.approx(4 + 16 / 128)
    assert recipe_bits("uint4:g32:rtn", shape).total == pytest.approx(4 + 16 / 32 + 4 / 32)
    # a partial last group still costs a scale: 100 inputs in groups of 32 -> 4 groups per row
    assert recipe_bits("int4:g32:rtn", (2, 100)).scales == pytest.approx(2 * 4 * 16 / 200)
    # unstructured: a 1-bit mask + one int64 row offset per row (compressed-tensors' sparse-bitmask)
    assert recipe_bits("prune75:magnitude", shape).total == pytest.approx(0.25 * 16 + 1 + 64 / 256)
    # 2:4: a 1-bit mask (sparse-24-bitmask); other N:M are stored as sparse-bitmask
    assert recipe_bits("2:4:sparsegpt", shape).total == pytest.approx(0.5 * 16 + 1)
    assert recipe_bits("4:8:magnitude", shape).sparsity_metadata == pytest.approx(1 + 64 / 256)
    both = recipe_bits("prune50:sparsegpt+int4:g128:gptq", shape)  # pvq-packed: no row offsets
    assert both.total == pytest.approx(0.5 * 4 + 16 / 128 + 1)
    int8 = recipe_bits("prune50:sparsegpt+int8:channel:rtn", shape)  # int-quantized + sparse-bitmask
    assert int8.total == pytest.approx(4 + 16 / 256 + 1 + 64 / 256)
    assert both.paper == 2.0
    conv = recipe_bits("int4:channel:rtn", (32, 16, 3, 3))
    assert conv.scales == pytest.approx(16 / (16 * 9))


def test_plan_round_trip_and_errors(tmp_path) -> None:
    plan = Plan({"a.weight": parse_recipe("int4:g128:gptq")}, parse_recipe("int8:channel:rtn"))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_json()))
    back = load_plan(path)
    assert back == plan
    assert str(back.recipe_for("b.weight")) == "int8:channel:rtn"
    with pytest.raises(PvqInputError, match="no such file"):
        load_plan(tmp_path / "missing.json")
    path.write_text("[1, 2]")
    with pytest.raises(PvqInputError, match="recipes"):
        load_plan(path)
