"""`pvq compare --eval`: recipes chosen by real bits, whole-model evaluation of a small module, resume, the
measured verdict and the report's first figure, and the headline naming the formats it chose."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from pvq.compare._eval_recipes import LINES, choose_options, model_bits, parse_lines
from pvq.compare._eval_stage import calibration_for, evaluate_options
from pvq.compare._text import verdict_text

REPO = Path(__file__).resolve().parents[1]
LINES_FAST = ("int:channel:rtn", "prune:wanda")  # wanda: a recipe that calibrates
BUDGETS = (3.0, 8.0)


def tiny_module() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=4), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip


@pytest.fixture(scope="module")
def stage_and_cache(tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("eval") / "eval.jsonl"
    calib, note = calibration_for(None, "image", None, seed=0)
    stage = evaluate_options(
        tiny_module(), name="tiny", kind="image", calibration=calib[:1], budgets=BUDGETS, lines=LINES_FAST,
        cache=cache, calibration_note=note,
    )  # fmt: skip
    return stage, cache


def test_options_take_the_largest_real_bits_not_above_the_budget() -> None:
    shapes = {"a.weight": (64, 3, 3, 3), "b.weight": (10, 256)}
    options, notes = choose_options(shapes, (2.0, 4.0, 8.0), tuple(LINES))
    for o in options:
        assert o.bits == pytest.approx(model_bits(o.recipe, shapes)) and o.bits <= o.budget + 1e-9
        above = [r for r in LINES[o.line].candidates if o.bits < model_bits(r, shapes) <= o.budget + 1e-9]
        assert not above, (o, above)  # nothing closer to the budget fits
    prune4 = next(o for o in options if o.line == "prune:magnitude" and o.budget == 4.0)
    # by hand: FP16 values of 1 - S/100 of the weights, plus the sparse-bitmask: 1 bit per weight with each row
    # padded to whole bytes, and one int64 row offset per row; a: 64 rows of 27, b: 10 rows of 256
    meta = (64 * (8 * 4 + 64) + 10 * (8 * 32 + 64)) / (64 * 27 + 10 * 256)
    s = math.ceil(100 * (1 - (4.0 - meta) / 16))
    assert prune4.recipe == f"prune{s}:magnitude" and s == 89
    # INT2 with a scale per row costs more than 2 bits: nothing of that line fits 2 bits, and a note says so
    assert not any(o.line == "int:channel:rtn" and o.budget == 2.0 for o in options)
    assert any(n.startswith("int:channel:rtn: nothing fits 2 bits") for n in notes)
    assert parse_lines("all") == tuple(LINES)
    with pytest.raises(ValueError, match="unknown option"):
        parse_lines("int:channel:rtn,bogus")


def test_tiny_module_is_applied_and_evaluated_per_budget(stage_and_cache) -> None:
    stage, _ = stage_and_cache
    assert stage.baseline.value("agreement") == 1.0 and stage.baseline.bits == 16.0
    for o in stage.options:
        p = stage.points[o.recipe]
        assert p.bits == pytest.approx(o.bits, rel=1e-6) and p.bits <= o.budget + 1e-9  # the applied model's bits
        assert 0.0 <= p.value("agreement") <= 1.0 and p.metrics["agreement"]["n"] == 70
        assert math.isfinite(p.weight_snr_db)
    wins = stage.winners()
    assert [w.budget for w in wins] == list(BUDGETS)
    for w in wins:
        here = [o for o in stage.options if o.budget == w.budget]
        assert stage.score(w.measured.recipe) == max(stage.score(o.recipe) for o in here)
        assert stage.points[w.proxy.recipe].weight_snr_db == max(stage.points[o.recipe].weight_snr_db for o in here)
    rows = stage.rows()
    assert {r["line"] for r in rows} == {"baseline", *LINES_FAST}


def test_resume_evaluates_only_missing_recipes(stage_and_cache) -> None:
    stage, cache = stage_and_cache
    lines_before = cache.read_text().splitlines()
    assert len(lines_before) == 1 + len({o.recipe for o in stage.options})
    budget_of = {o.recipe: o.budget for o in reversed(stage.options)}  # a recipe's first budget
    order = [budget_of[json.loads(x)["recipe"]] for x in lines_before[1:]]
    assert order == sorted(order, key=BUDGETS.index)  # budget by budget: an interrupted run has whole budgets
    again = evaluate_options(
        tiny_module(), name="tiny", kind="image", calibration=None, budgets=BUDGETS, lines=LINES_FAST[:1], cache=cache
    )
    assert cache.read_text().splitlines() == lines_before  # nothing re-evaluated, nothing appended
    assert again.points["none"].seconds == stage.points["none"].seconds  # read back, not measured again
    more = evaluate_options(
        tiny_module(), name="tiny", kind="image", calibration=None, budgets=(*BUDGETS, 4.0), lines=LINES_FAST[:1],
        cache=cache,
    )  # fmt: skip
    new = {o.recipe for o in more.options if o.budget == 4.0} - {o.recipe for o in stage.options}
    assert len(cache.read_text().splitlines()) == len(lines_before) + len(new) and new


def _result_with(stage, tmp: Path, total_params: int = 0):
    from test_report_html import build_result

    res = build_result(tmp)
    res.evaluation = stage
    res.total_params = total_params
    return res


def test_verdict_states_measured_winner_then_proxy(stage_and_cache, tmp_path: Path) -> None:
    stage, _ = stage_and_cache
    v = verdict_text(_result_with(stage, tmp_path))
    wins = stage.winners()
    ref = wins[1]  # 4 bits not evaluated: the headline takes the middle budget, 8 of (3, 8)
    assert v.headline.startswith("Measured (top-1 agreement")
    assert f"**{ref.measured.recipe}** is best" in v.headline
    assert f"the SNR proxy picks {ref.proxy.recipe}" in v.headline
    agree = sum(w.agree for w in wins)
    assert f"The SNR proxy picked the measured winner at {agree} of {len(wins)} budgets." in v.headline
    assert v.points[0].startswith("At 3 bits per weight") and "best pruning" in v.points[0]
    assert any(p.startswith("Per-tensor SNR proxy:") for p in v.points)
    assert not any("no accuracy was measured" in w for w in v.warnings)


def test_headline_names_formats_and_counts_every_parameter(tmp_path: Path) -> None:
    from test_report_html import build_result

    res = build_result(tmp_path)
    analysed = sum(res.allocation.sizes.values())
    res.total_params = analysed + 5_000_000  # the synthetic model's 3,072 analysed weights and 5 M others
    rec = next(p for p in verdict_text(res).points if p.startswith("Recommendation"))
    for label, count in Counter(o.label for o in res.allocation.choices.values()).items():
        assert f"{label} for {count} tensor" in rec
    assert "same INT-b" not in rec
    assert f"{analysed:,} conv/linear weights analysed" in rec and analysed == 3072
    assert "5 M parameters in all; the other 5 M (embeddings, norms, biases) stay FP16" in rec


def test_report_first_figure_is_measured_quality(stage_and_cache, tmp_path: Path) -> None:
    from pvq.compare._write import write_outputs
    from pvq.report import write_compare_report

    stage, _ = stage_and_cache
    res = _result_with(stage, tmp_path / "out")
    verdict = verdict_text(res)
    files = write_outputs(res, tmp_path / "out", verdict, "test")
    page = write_compare_report(res, verdict, tmp_path / "out", "test", files)
    text = page.read_text()
    assert (tmp_path / "out" / "figures" / "measured_quality.png").exists()
    first_fig = re.search(r'<figure id="fig-([a-z_]+)"', text)
    assert first_fig and first_fig.group(1) == "measured_quality"
    assert text.index("id='measured'") < text.index("id='by-bits'")
    rows = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert {r["recipe"] for r in rows} == {"none", *(o.recipe for o in stage.options)}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["evaluation"]["primary_metric"] == "agreement"

    from test_report_html import CHROMIUM, check_in_browser

    if CHROMIUM is not None:  # the page with its new first figure, in a real browser
        check_in_browser(page, tmp_path, REPO / "test-artifacts" / "report_measured.png", min_images=6)


def test_weights_only_file_skips_eval_and_says_so(tmp_path: Path) -> None:
    from pvq.compare import CompareConfig, run_compare

    src = tmp_path / "m.pt"
    torch.save(tiny_module().state_dict(), src)
    res = run_compare(CompareConfig(source=str(src), bits=(4,), out=tmp_path / "o", layers=0))
    assert res.evaluation is None
    assert res.eval_note.startswith("No model-level evaluation") and "weights only" in res.eval_note
    assert "weights only" in " ".join(verdict_text(res).warnings)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--eval-options", "int:channel:rtn,nope", "--eval-options: unknown option(s) nope"),
        ("--eval-budgets", "4,x", "--eval-budgets: not a list of numbers"),
        ("--eval-budgets", "4,32", "--eval-budgets: need bits per weight in 1..16"),
    ],
)
def test_cli_rejects_bad_eval_flags(
    flag: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pvq.cli import main

    with pytest.raises(SystemExit) as exc:  # in process: refused before any model is loaded
        main(["compare", "mobilenet_v2", flag, value, "--out", str(tmp_path / "o"), "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pvq: error:") and message in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_cli_eval_on_mobilenet_v2(tmp_path: Path) -> None:
    from test_compare_cli import run_pvq

    out = tmp_path / "mn"
    args = ("compare", "mobilenet_v2", "--layers", "0", "--bits", "4", "--eval-budgets", "4", "--out", str(out))
    res = run_pvq(*args, "--eval-options", "int:channel:rtn,prune:magnitude")
    assert res.returncode == 0, res.stderr
    assert "eval 1/" in res.stderr  # progress lines on stderr
    summary = json.loads((out / "summary.json").read_text())
    by = summary["evaluation"]["by_budget"]
    assert [b["budget_bits"] for b in by] == [4.0] and summary["evaluation"]["plan"] is not None
    res2 = run_pvq(*args, "--eval-options", "int:channel:rtn,prune:magnitude")  # resumes: nothing re-evaluated
    assert res2.returncode == 0 and "already evaluated" in res2.stderr


def test_best_pruning_is_pruning_alone_and_winners_follow_the_metric() -> None:
    from pvq.compare._eval_recipes import EvalOption
    from pvq.compare._eval_stage import EvalPoint, EvalStage

    def point(recipe: str, agreement: float, kl: float, snr: float) -> EvalPoint:
        rows = {"agreement": {"metric": "agreement", "value": agreement}, "kl": {"metric": "kl", "value": kl}}
        return EvalPoint(recipe, 4.0, rows, snr, 1.0)

    opts = [
        EvalOption("int:g128:gptq", "quantization", 4.0, "int3:g128:gptq", 3.2),
        EvalOption("prune:magnitude", "pruning", 4.0, "prune84:magnitude", 3.9),
        EvalOption("2:4:sparsegpt", "n:m", 4.0, "2:4:sparsegpt+int5:g128:gptq", 3.7),
    ]
    pts = {
        "none": point("none", 1.0, 0.0, math.inf),
        "int3:g128:gptq": point("int3:g128:gptq", 0.0, 4.6, 12.0),
        "prune84:magnitude": point("prune84:magnitude", 0.0, 8.7, 3.8),
        "2:4:sparsegpt+int5:g128:gptq": point("2:4:sparsegpt+int5:g128:gptq", 0.2, 5.9, 6.6),
    }
    (w,) = EvalStage("m", "image", opts, pts, pts["none"], None, None, "").winners()
    assert w.measured.recipe == "2:4:sparsegpt+int5:g128:gptq"  # agreement first, then KL
    assert w.proxy.recipe == "int3:g128:gptq" and not w.agree
    assert w.best_quantization.recipe == "int3:g128:gptq"
    assert w.best_pruning.recipe == "prune84:magnitude"  # 2:4 with INT5 codes is not pruning alone


@pytest.mark.parametrize(("plan_agreement", "loses"), [(0.1, True), (0.5, False)])
def test_verdict_says_when_the_plan_measured_worse_than_a_uniform_option(plan_agreement: float, loses: bool) -> None:
    from pvq.compare._eval_recipes import EvalOption
    from pvq.compare._eval_stage import EvalPoint, EvalStage
    from pvq.compare._eval_text import measured_points

    def point(recipe: str, agreement: float, kl: float) -> EvalPoint:
        rows = {
            m: {"metric": m, "value": v, "n": 70}
            for m, v in (("agreement", agreement), ("kl", kl))
        }
        return EvalPoint(recipe, 4.0, rows, 10.0, 1.0)

    opts = [EvalOption("int:g128:gptq", "quantization", 4.0, "int3:g128:gptq", 3.2)]
    pts = {"none": point("none", 1.0, 0.0), "int3:g128:gptq": point("int3:g128:gptq", 0.3, 2.0)}
    pts["plan:x"] = plan = point("plan:x", plan_agreement, 1.0)
    _, points = measured_points(EvalStage("m", "image", opts, pts, pts["none"], plan, 4.0, ""))
    text = next(p for p in points if p.startswith("The recommended plan"))
    assert ("measured worse than int3:g128:gptq" in text) is loses
    assert ("at least as good as every option" in text) is not loses
