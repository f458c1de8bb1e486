"""Prune or quantize at equal latency and at equal bytes, from measured deployment rows (pure, no I/O).

Input: the ``pvq deploy`` rows of one model (DESIGN.md deploy keys plus ``ci_low``/``ci_high``/``status``), every
option's real bytes on disk, its latency ratio to FP32 measured interleaved in the same run, and its quality on
held-out data against the FP32 PyTorch model (higher is better: top-1 agreement for classifiers, mean cosine for
encoders).

- Each option is one point per batch size: (latency ratio, quality) and (bytes, quality).
- The Pareto front: the points no other point beats on both axes (cost no higher, quality no lower, one of the
  two strictly better). FP32 is a point too, so "nothing beats the uncompressed model" can be read off.
- Equal cost: for every cost ``c`` at which an option of each family exists, the best quantization option and
  the best pruning option costing at most ``c`` are compared. A family wins at ``c`` when its quality is higher
  and the 95 % intervals do not overlap; otherwise it is a ``tie``. The answer is the winner at every such
  ``c`` when it is the same one, ``depends`` when the winner changes, ``tie`` when no ``c`` separates them, and
  ``n/a`` when a family has no measured option.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DeployPoint", "EqualCost", "equal_cost", "family_of", "pareto_front", "points_from_rows"]

FAMILIES = ("quantization", "pruning")


def family_of(option: str) -> str:
    """``reference`` (fp32), ``quantization`` (fp16, int8-*, quantization recipes), ``pruning`` (channelsK,
    pruneS / N:M recipes, 2:4) or ``pruning+quantization`` (a combined recipe)."""
    name = option.split("/", 1)[-1]  # "torch/int8-dynamic" -> "int8-dynamic"
    if name == "fp32":
        return "reference"
    if name.startswith("channels") or name == "2:4-gpu":
        return "pruning"
    if name in ("fp16", "int8-static", "int8-dynamic", "int8-weight"):
        return "quantization"
    parts = name.split("+")
    pruned = any(p.startswith("prune") or p[:1].isdigit() for p in parts)  # pruneS:..., N:M:...
    quant = any(not (p.startswith("prune") or p[:1].isdigit()) for p in parts)
    if pruned and quant:
        return "pruning+quantization"
    return "pruning" if pruned else "quantization"


@dataclass(frozen=True)
class DeployPoint:
    """One measured option at one batch size. ``option``: ``RUNTIME/NAME`` (e.g. ``onnxruntime/int8-static``);
    ``cost`` on the axis asked for; ``value``, ``low``/``high`` its quality and 95 % interval."""

    option: str
    family: str
    latency_ratio: float
    bytes: int
    value: float
    low: float
    high: float


def points_from_rows(rows: Iterable[Mapping[str, Any]], batch: int) -> list[DeployPoint]:
    """The measured (``status == "ok"``) rows at ``batch`` as points; skipped options are left out."""
    out = []
    for r in rows:
        if r.get("status", "ok") != "ok" or int(r["batch"]) != batch or r.get("value") is None:
            continue
        v = float(r["value"])
        lo = v if r.get("ci_low") is None else float(r["ci_low"])
        hi = v if r.get("ci_high") is None else float(r["ci_high"])
        name = f"{r['runtime']}/{r['recipe']}"
        out.append(
            DeployPoint(
                name, family_of(str(r["recipe"])), float(r["latency_ratio"]), int(r["bytes"]), v, lo, hi
            )
        )
    return out


def _cost(p: DeployPoint, axis: str) -> float:
    return p.latency_ratio if axis == "latency" else float(p.bytes)


def pareto_front(points: Sequence[DeployPoint], axis: str) -> list[DeployPoint]:
    """The points on the (cost, quality) Pareto front, cheapest first; ``axis``: ``latency`` or ``bytes``."""
    front = []
    for p in points:
        cp = _cost(p, axis)
        beaten = any(
            _cost(q, axis) <= cp and q.value >= p.value and (_cost(q, axis) < cp or q.value > p.value)
            for q in points
            if q is not p
        )
        if not beaten:
            front.append(p)
    return sorted(front, key=lambda p: (_cost(p, axis), -p.value))


@dataclass(frozen=True)
class EqualCost:
    """The answer on one cost axis. ``answer``: ``quantization``, ``pruning``, ``depends``, ``tie`` or ``n/a``;
    ``steps``: per cost level where both families have an option, (cost, best quantization, best pruning,
    winner); ``text``: one sentence."""

    axis: str
    batch: int
    answer: str
    steps: tuple[tuple[float, str, str, str], ...]
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "batch": self.batch,
            "answer": self.answer,
            "text": self.text,
            "steps": [
                {"cost": c, "best_quantization": q, "best_pruning": p, "winner": w}
                for c, q, p, w in self.steps
            ],
        }


def _best(points: Sequence[DeployPoint], family: str, cost: float, axis: str) -> DeployPoint | None:
    here = [p for p in points if p.family == family and _cost(p, axis) <= cost]
    return max(here, key=lambda p: (p.value, -_cost(p, axis))) if here else None


def _fmt_cost(c: float, axis: str) -> str:
    return f"{c:.2f}x FP32's time" if axis == "latency" else f"{c / 1e6:.2f} MB"


def equal_cost(points: Sequence[DeployPoint], axis: str, batch: int, metric: str = "quality") -> EqualCost:
    """Which family gives the better quality at equal ``axis`` (``latency`` ratio or ``bytes``); see the module
    docstring for the rule."""
    fams = {f: [p for p in points if p.family == f] for f in FAMILIES}
    what = "latency" if axis == "latency" else "bytes on disk"
    if not all(fams.values()):
        missing = [f for f in FAMILIES if not fams[f]]
        return EqualCost(
            axis, batch, "n/a", (), f"At equal {what} (batch {batch}): no measured {' or '.join(missing)} option."
        )
    start = max(min(_cost(p, axis) for p in fams[f]) for f in FAMILIES)
    levels = sorted({_cost(p, axis) for p in points if p.family in FAMILIES and _cost(p, axis) >= start})
    steps = []
    for c in levels:
        q, p = _best(points, "quantization", c, axis), _best(points, "pruning", c, axis)
        assert q is not None and p is not None  # every level is at least the costlier family's cheapest
        if q.value > p.value and q.low > p.high:
            w = "quantization"
        elif p.value > q.value and p.low > q.high:
            w = "pruning"
        else:
            w = "tie"
        steps.append((c, q.option, p.option, w))
    winners = {w for *_, w in steps} - {"tie"}
    if not winners:
        answer = "tie"
        text = (
            f"At equal {what} (batch {batch}): no cost level separates the families (95 % intervals overlap)."
        )
    elif len(winners) == 1:
        answer = winners.pop()
        n_win = sum(w == answer for *_, w in steps)
        lo = next(c for c, *_, w in steps if w == answer)
        text = (
            f"At equal {what} (batch {batch}): {answer} wins at {n_win} of {len(steps)} cost levels where both "
            f"families have an option (from {_fmt_cost(lo, axis)}; the rest are ties on {metric})."
            if n_win < len(steps)
            else f"At equal {what} (batch {batch}): {answer} wins at every cost level where both families have an "
            f"option ({len(steps)} levels from {_fmt_cost(levels[0], axis)}), on {metric}."
        )
    else:
        answer = "depends"
        parts = [f"{w} at {_fmt_cost(c, axis)}" for c, *_, w in steps if w != "tie"]
        text = f"At equal {what} (batch {batch}): it depends on the budget: " + ", ".join(parts) + "."
    cheaper = [p for p in points if p.family in FAMILIES and _cost(p, axis) < start]
    if cheaper:  # below the first common level only one family has an option: say so, with its best
        only = max(cheaper, key=lambda p: p.value)
        text += (
            f" Below {_fmt_cost(start, axis)} only {only.family} has options (best: {only.option}, {metric} "
            f"{only.value:.3g})."
        )
    return EqualCost(axis, batch, answer, tuple(steps), text)
