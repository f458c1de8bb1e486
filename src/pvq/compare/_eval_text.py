"""The measured verdict in words: the measured winner first, the SNR-proxy winner beside it."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["METRIC_WORDS", "measured_points", "metric_value"]

METRIC_WORDS = {
    "agreement": "top-1 agreement with the uncompressed model",
    "kl": "KL divergence to the uncompressed model",
    "perplexity": "perplexity",
    "cosine": "embedding cosine to the uncompressed model",
    "retrieval_top1": "paraphrase retrieval top-1",
}


def metric_value(point: Any, metric: str) -> str:
    """``0.914 (95 % CI 0.82-0.96, n = 70)`` for a proportion, ``17.4 (n = 1023)`` otherwise."""
    m = point.metrics[metric]
    v = m["value"]
    if v is None:
        return "n/a"
    text = f"{v:.4g}"
    lo, hi = m.get("ci_low"), m.get("ci_high")
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
        return f"{text} (95 % CI {lo:.3g}-{hi:.3g}, n = {m['n']})"
    return f"{text} (n = {m['n']})"


def _both(ev: Any, recipe: str) -> str:
    """The deciding metric with its interval, then the tie-breaker: ``agreement 0.9 (...), kl 0.12``."""
    from pvq.compare._eval_stage import PRIMARY

    prim, second = PRIMARY[ev.kind]
    p = ev.points[recipe]
    return f"{prim} {metric_value(p, prim)}, {second} {p.value(second):.4g}"


def _pick(ev: Any, budgets: list[float]) -> float:
    return 4.0 if 4.0 in budgets else budgets[len(budgets) // 2]


def _plan_against_winner(ev: Any, wins: list[Any]) -> str:
    """How the applied plan compares with the measured winner at its budget (the plan comes from the weight-SNR
    allocation, a proxy, so it can lose to a uniform option; then the sentence says which to apply instead)."""
    if ev.plan_bits_budget is None or ev.plan.recipe not in ev.points:
        return ""
    here = [w for w in wins if abs(w.budget - ev.plan_bits_budget) < 1e-9]
    if not here:
        return ""
    best = here[0].measured.recipe
    if ev.score(ev.plan.recipe) >= ev.score(best):
        return f" It is at least as good as every option measured at {ev.plan_bits_budget:g} bits (best: {best})."
    return (
        f" It measured worse than {best} at the same budget ({ev.primary} {ev.points[best].value(ev.primary):.4g}): "
        f"apply that instead (`pvq apply SOURCE --recipe {best}`); the plan is allocated on weight SNR, every layer "
        "taken as equally sensitive."
    )


def measured_points(ev: Any) -> tuple[str, list[str]]:
    """(headline, points) for an :class:`~pvq.compare._eval_stage.EvalStage`."""
    prim = ev.primary
    words = METRIC_WORDS.get(prim, prim)
    wins = ev.winners()
    if not wins:
        return ("No option fitted any --eval budget; see the notes.", [])
    agree = sum(w.agree for w in wins)
    ref = _pick(ev, [w.budget for w in wins])
    w = next(x for x in wins if x.budget == ref)
    pts = ev.points
    head = (
        f"Measured ({words}, held-out data, {ev.direction} is better): at {ref:g} real bits per weight "
        f"**{w.measured.recipe}** is best ({_both(ev, w.measured.recipe)}; uncompressed "
        f"{ev.baseline.value(prim):.4g}); the SNR proxy picks {w.proxy.recipe}"
        f"{' (the same)' if w.agree else f' ({_both(ev, w.proxy.recipe)})'}. "
        f"The SNR proxy picked the measured winner at {agree} of {len(wins)} budgets."
    )
    points = []
    for x in wins:
        q, p = x.best_quantization, x.best_pruning
        parts = [f"best {x.measured.recipe} ({pts[x.measured.recipe].value(prim):.4g}, {pts[x.measured.recipe].bits:.3g} bits)"]
        parts.append(f"best quantization {q.recipe} ({pts[q.recipe].value(prim):.4g})" if q else "no quantization option fits")
        parts.append(f"best pruning {p.recipe} ({pts[p.recipe].value(prim):.4g})" if p else "no pruning option fits")
        parts.append(f"SNR proxy: {x.proxy.recipe}{' (agrees)' if x.agree else ' (disagrees)'}")
        points.append(f"At {x.budget:g} bits per weight (measured {prim}): " + "; ".join(parts) + ".")
    if ev.plan is not None:
        points.append(
            f"The recommended plan, applied ({ev.plan.bits:.3g} real bits per weight): {prim} "
            f"{metric_value(ev.plan, prim)}." + _plan_against_winner(ev, wins)
        )
    second = ev.metric_order[1]
    points.append(
        f"Options are ranked by {prim}, ties broken by {METRIC_WORDS.get(second, second)}. "
        "Each option takes the parameter (bit-width or sparsity) whose real bits per weight, scales, zero points "
        "and masks included, come closest to the budget without exceeding it."
    )
    return head, points
