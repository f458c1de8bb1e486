"""``pvq compare --deploy``: the equal-latency / equal-bytes answer (pure), the stage on a tiny model (resumable,
additive JSON), the report section, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from pvq.compare._deploy_verdict import DeployPoint, equal_cost, family_of, pareto_front, points_from_rows
from pvq.errors import PvqInputError


def _row(recipe: str, ratio: float, nbytes: int, value: float, half: float = 0.02, **kw: object) -> dict:
    return {
        "model": "m",
        "recipe": recipe,
        "runtime": kw.get("runtime", "onnxruntime"),
        "batch": kw.get("batch", 1),
        "bytes": nbytes,
        "latency_ms": ratio * 10,
        "latency_ratio": ratio,
        "metric": "agreement",
        "value": value,
        "ci_low": value - half,
        "ci_high": value + half,
        "status": kw.get("status", "ok"),
    }


def test_family_of_options_and_recipes() -> None:
    assert family_of("fp32") == "reference"
    for q in ("fp16", "int8-static", "int8-dynamic", "int8-weight", "int4:g128:gptq", "torch/int8-dynamic"):
        assert family_of(q) == "quantization", q
    for p in ("channels50", "prune50:magnitude", "2:4:sparsegpt", "2:4-gpu"):
        assert family_of(p) == "pruning", p
    assert family_of("prune50:sparsegpt+int4:g128:gptq") == "pruning+quantization"


def test_pareto_front_keeps_only_undominated_points() -> None:
    pts = points_from_rows(
        [
            _row("fp32", 1.0, 100, 1.0),
            _row("int8-static", 0.5, 25, 0.7),
            _row("channels50", 0.5, 50, 0.1),  # same time as int8-static, worse: dominated
            _row("int8-dynamic", 5.0, 24, 0.65),  # slowest but smallest
            _row("fp16", 2.0, 50, 0.99, status="skipped"),  # skipped rows are not points
        ],
        batch=1,
    )
    assert [p.option for p in pts] == [
        "onnxruntime/fp32",
        "onnxruntime/int8-static",
        "onnxruntime/channels50",
        "onnxruntime/int8-dynamic",
    ]
    assert [p.option.split("/")[1] for p in pareto_front(pts, "latency")] == ["int8-static", "fp32"]
    assert [p.option.split("/")[1] for p in pareto_front(pts, "bytes")] == [
        "int8-dynamic",
        "int8-static",
        "fp32",
    ]


def test_equal_cost_answers() -> None:
    q = DeployPoint("onnxruntime/int8-static", "quantization", 0.5, 25, 0.7, 0.6, 0.8)
    p = DeployPoint("onnxruntime/channels50", "pruning", 0.45, 50, 0.1, 0.05, 0.15)
    ref = DeployPoint("onnxruntime/fp32", "reference", 1.0, 100, 1.0, 1.0, 1.0)
    lat = equal_cost([ref, q, p], "latency", 1)
    # levels from the costlier family's cheapest option (0.5): there int8-static beats channels50
    assert lat.answer == "quantization" and [s[0] for s in lat.steps] == [0.5]
    assert "quantization wins at every cost level" in lat.text
    # pruning better at small bytes, quantization better once it fits: the answer depends on the budget
    q2 = DeployPoint("onnxruntime/fp16", "quantization", 1.2, 50, 0.99, 0.97, 1.0)
    p2 = DeployPoint("onnxruntime/prune75", "pruning", 1.0, 20, 0.9, 0.85, 0.95)
    by = equal_cost([p2, q, q2, p], "bytes", 1)
    assert by.answer == "depends" and [s[3] for s in by.steps] == ["pruning", "quantization"]
    by2 = equal_cost([p2, DeployPoint("onnxruntime/x", "quantization", 1.0, 25, 0.5, 0.45, 0.55)], "bytes", 1)
    assert by2.answer == "pruning"
    # overlapping intervals: a tie, never a winner
    close = DeployPoint("onnxruntime/c", "pruning", 0.5, 50, 0.69, 0.6, 0.8)
    assert equal_cost([q, close], "latency", 1).answer == "tie"
    assert equal_cost([q, ref], "latency", 1).answer == "n/a"


def test_equal_cost_changes_winner_with_budget() -> None:
    # at 0.5x pruning is the only good option; at 0.8x quantization beats it
    pts = [
        DeployPoint("a/p", "pruning", 0.5, 10, 0.8, 0.75, 0.85),
        DeployPoint("a/q1", "quantization", 0.45, 10, 0.3, 0.25, 0.35),
        DeployPoint("a/q2", "quantization", 0.8, 10, 0.95, 0.93, 0.97),
    ]
    a = equal_cost(pts, "latency", 32)
    assert a.answer == "depends" and [s[3] for s in a.steps] == ["pruning", "quantization"]
    assert "pruning at 0.50x" in a.text and "quantization at 0.80x" in a.text


def test_bad_deploy_options_fail_before_any_work() -> None:
    from pvq.compare import CompareConfig

    with pytest.raises(PvqInputError, match="--deploy-options: --recipe bogus"):
        CompareConfig(deploy=True, deploy_options=("fp32", "bogus"))
    with pytest.raises(PvqInputError, match="runtime must be one of"):
        CompareConfig(deploy=True, deploy_options=("tensorrt/fp32",))
    with pytest.raises(PvqInputError, match="--deploy-batch"):
        CompareConfig(deploy=True, deploy_batches=(0,))
    CompareConfig(deploy=False, deploy_options=("bogus",))  # not checked unless --deploy


def test_cli_bad_deploy_options_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from pvq.cli import main

    with pytest.raises(SystemExit) as exc:
        main(
            [
                "compare",
                "mobilenet_v2",
                "--deploy",
                "--deploy-options",
                "fp32,nope",
                "--out",
                str(tmp_path / "o"),
            ]
        )
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("pvq: error: --deploy-options") and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_deploy_stage_on_a_tiny_model_resumes_and_reports(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch_pruning")
    from pvq.compare._deploy_stage import deploy_stage
    from pvq.report._deploy_section import deploy_section_html, fig_deploy
    from test_deploy import tiny_net

    cache = tmp_path / "deploy.jsonl"
    logs: list[str] = []
    # evaluation (70 photo views per option) dominates the time: the fewest options that cover both families
    kw = dict(name="mobilenet_v2", kind="image", batches=(1, 2), repeats=1, warmup=0, measure_memory=False)
    first = deploy_stage(
        tiny_net(), options=["int8-dynamic", "channels50", "torch/2:4-gpu"], cache=cache, log=logs.append, **kw
    )
    keys = {(r["runtime"], r["recipe"]) for r in first.rows}
    assert keys == {
        ("onnxruntime", "fp32"),
        ("onnxruntime", "int8-dynamic"),
        ("onnxruntime", "channels50"),
        ("torch", "fp32"),
        ("torch", "2:4-gpu"),
    }
    by = {(r["runtime"], r["recipe"], r["batch"]): r for r in first.rows}
    assert by[("torch", "2:4-gpu", 1)]["status"] == "skipped" and "GPU" in by[("torch", "2:4-gpu", 1)]["note"]
    assert by[("onnxruntime", "channels50", 2)]["bytes"] < by[("onnxruntime", "fp32", 2)]["bytes"]
    axes = {(a.axis, a.batch) for a in first.answers}
    assert axes == {("latency", 1), ("latency", 2), ("bytes", 1), ("bytes", 2)}  # torch: no compressed option
    assert all(a.answer in ("quantization", "pruning", "depends", "tie") for a in first.answers)
    s = first.summary()
    assert s["metric"] == "agreement" and s["pareto"]["bytes"]["2"]
    # resume: the measured options are read back, only the new one is built
    logs.clear()
    again = deploy_stage(
        tiny_net(),
        options=["int8-dynamic", "channels50", "fp16", "torch/2:4-gpu"],
        cache=cache,
        log=logs.append,
        **kw,
    )
    assert any("resuming, 2 of 3 option(s) already measured" in m for m in logs)
    assert not any("channels50: building" in m for m in logs) and any("fp16: building" in m for m in logs)
    again_by = {(r["runtime"], r["recipe"], r["batch"]): r for r in again.rows}
    assert again_by[("onnxruntime", "channels50", 1)] == by[("onnxruntime", "channels50", 1)]
    # the report section: answers, one table row per option, the figure
    fig = fig_deploy(again, tmp_path / "figures")
    assert fig is not None and fig.png.exists()
    page = deploy_section_html(again, "<figure></figure>")
    assert page.count("<tr>") == 1 + 6 and "Pareto front" in page and "skipped: 2:4 semi-structured" in page
    assert deploy_section_html(None, note="No deployment <x>").count("&lt;x&gt;") == 1


def test_deploy_stage_explains_what_it_cannot_deploy(tmp_path: Path) -> None:
    from pvq.compare import CompareConfig
    from pvq.compare._deploy_stage import run_deploy_stage

    class _Folder:  # run_deploy_stage returns before it claims a file for these sources
        path = tmp_path

        def claim(self, *a: object, **k: object) -> bool:
            raise AssertionError("nothing to resume for a source that is not deployed")

    stage, note = run_deploy_stage(CompareConfig(source=str(tmp_path / "w.safetensors"), deploy=True), _Folder(), print)
    assert stage is None and "bundled models" in note and "pvq.deploy.deploy" in note
    stage, note = run_deploy_stage(CompareConfig(source="smollm2", deploy=True), _Folder(), print)
    assert stage is None and "pvq deploy smollm2" in note


def test_equal_cost_says_which_family_alone_reaches_the_lowest_cost() -> None:
    fast_prune = DeployPoint("onnxruntime/channels50", "pruning", 0.5, 7, 0.03, 0.0, 0.1)
    slow_quant = DeployPoint("onnxruntime/int8-static", "quantization", 1.3, 4, 0.7, 0.6, 0.8)
    a = equal_cost([fast_prune, slow_quant], "latency", 1, "agreement")
    assert a.answer == "quantization" and [s[0] for s in a.steps] == [1.3]
    assert "Below 1.30x FP32's time only pruning has options (best: onnxruntime/channels50, agreement 0.03)" in a.text


def test_deploy_verdict_point_names_both_answers_and_the_hardware_caveat() -> None:
    from pvq.compare._deploy_stage import DeployStage, deploy_verdict_point

    rows = [_row("fp32", 1.0, 100, 1.0, batch=8), _row("int8-static", 0.9, 25, 0.7, batch=8)]
    rows += [_row("channels50", 0.5, 50, 0.1, batch=8)]
    pts = points_from_rows(rows, 8)
    answers = [equal_cost(pts, "latency", 8), equal_cost(pts, "bytes", 8)]
    answers[0] = type(answers[0])("latency", 8, answers[0].answer, answers[0].steps, "onnxruntime: " + answers[0].text)
    stage = DeployStage("m", "image", "agreement", (8,), rows, answers, "cpu")
    text = deploy_verdict_point(stage)
    assert "at equal latency, **quantization** wins" in text and "at equal bytes on disk, **quantization** wins" in text
    assert "this machine only" in text
