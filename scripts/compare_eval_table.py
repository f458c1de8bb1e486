"""The closing table of issue 13 from `pvq compare MODEL --eval` output folders (finished or interrupted).

For each folder: the bundled model's weight shapes give the options each budget evaluates
(:func:`pvq.compare._eval_recipes.choose_options`, the same call ``--eval`` makes); the measured points come from
``OUT/partial/eval.jsonl``; :class:`pvq.compare._eval_stage.EvalStage` picks, per budget, the best quantization
option, the best pruning option (unstructured or N:M), the measured winner and the SNR proxy's pick. A budget whose
options are not all evaluated yet is marked partial.

    PYTHONPATH=src .venv/bin/python scripts/compare_eval_table.py MODEL=DIR[:LINES] ... > table.md

``LINES``: the run's ``--eval-options`` (comma list; default: compare's default lines).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from pvq._io import read_jsonl
from pvq.apply._apply import _weight_params
from pvq.compare._eval_recipes import DEFAULT_LINES, EVAL_BUDGETS, choose_options, parse_lines
from pvq.compare._eval_stage import PRIMARY, EvalPoint, EvalStage
from pvq.evaluate import kind_of
from pvq.models import create_model


def _fmt(p: EvalPoint, metrics: tuple[str, str]) -> str:
    parts = []
    for m in metrics:
        row = p.metrics.get(m, {})
        v = row.get("value")
        if v is None:
            parts.append(f"{m} n/a")
            continue
        lo, hi = row.get("ci_low"), row.get("ci_high")
        ci = f" ({lo:.3g}-{hi:.3g})" if lo is not None and hi is not None and not math.isnan(lo) else ""
        parts.append(f"{m} {v:.4g}{ci}")
    return "; ".join(parts)


def table(model: str, folder: Path, lines: tuple[str, ...]) -> list[str]:
    kind = kind_of(model)
    net = create_model(model)
    shapes = {p.names[0]: tuple(p.param.shape) for p in _weight_params(net) if p.kind() in ("linear", "conv")}
    options, _notes = choose_options(shapes, EVAL_BUDGETS, lines)
    points = {r["recipe"]: EvalPoint.from_json(r) for r in read_jsonl(folder / "partial" / "eval.jsonl") if "recipe" in r}
    if "none" not in points:
        return [f"| {model} | — | not evaluated yet | | | | |"]
    stage = EvalStage(model, kind, options, points, points["none"], None, None, "")
    metrics = PRIMARY[kind]
    base = _fmt(points["none"], metrics) if kind == "lm" else "reference"
    if kind == "lm":
        base = f"perplexity {points['none'].metrics['perplexity']['baseline']:.4g}"
    out = []
    for w in stage.winners():
        here = [o for o in options if o.budget == w.budget]
        done = [o for o in here if o.recipe in points]
        partial = "" if len(done) == len(here) else f" (partial: {len(done)} of {len(here)} options)"
        q, pr = w.best_quantization, w.best_pruning
        pending_q = any(o.family == "quantization" and o.recipe not in points for o in here)
        pending_p = any(o.family in ("pruning", "n:m") and o.recipe not in points for o in here)
        qs = f"`{q.recipe}` ({q.bits:.2f} b): {_fmt(points[q.recipe], metrics)}" if q else "none fits"
        ps = f"`{pr.recipe}` ({pr.bits:.2f} b): {_fmt(points[pr.recipe], metrics)}" if pr else "none fits"
        qs += " (more not evaluated yet)" if pending_q else ""
        ps = "not evaluated yet" if pr is None and pending_p else ps + (" (more not evaluated yet)" if pending_p else "")
        agree = "yes" if w.agree else f"no (proxy: `{w.proxy.recipe}`)"
        out.append(
            f"| {model} | {w.budget:g}{partial} | {qs} | {ps} | `{w.measured.recipe}` | {agree} | {base} |"
        )
    return out


def main() -> None:
    print("| model | budget (real bits) | best quantization (measured) | best pruning (measured) | measured winner "
          "| SNR proxy picked it | baseline |")
    print("|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        model, rest = arg.split("=", 1)
        folder, _, lines = rest.partition(":")
        for row in table(model, Path(folder), parse_lines(lines) if lines else DEFAULT_LINES):
            print(row)


if __name__ == "__main__":
    main()
