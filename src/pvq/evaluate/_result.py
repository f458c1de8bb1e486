"""Evaluation results: every number with its metric, direction, split, sample size and interval."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["EvalRow", "EvalResult", "DIRECTIONS"]

# which way is better, per metric name
DIRECTIONS = {
    "perplexity": "lower",
    "kl": "lower",
    "agreement": "higher",
    "accuracy": "higher",
    "top5_accuracy": "higher",
    "cosine": "higher",
    "retrieval_top1": "higher",
    "output_snr_db": "higher",
}


@dataclass(frozen=True)
class EvalRow:
    """One metric of one model. ``baseline`` is the uncompressed model's value on the same examples (for
    metrics measured against the uncompressed model, such as agreement or KL, its trivial value). ``n`` counts
    the examples (tokens, photo views, sentences); ``ci_low``/``ci_high`` a 95 % interval (Wilson for
    proportions, Student-t over examples for means; NaN where none is computed, ``interval`` says which)."""

    model: str
    recipe: str
    bits_per_weight: float
    metric: str
    value: float
    baseline: float
    split: str
    n: int
    ci_low: float = math.nan
    ci_high: float = math.nan
    interval: str = "none"
    note: str = ""

    @property
    def direction(self) -> str:
        return DIRECTIONS.get(self.metric, "higher")

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["direction"] = self.direction
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass(frozen=True)
class EvalResult:
    """All rows of one evaluation; ``value(metric)`` picks one."""

    rows: tuple[EvalRow, ...]

    def value(self, metric: str) -> float:
        for r in self.rows:
            if r.metric == metric:
                return r.value
        raise KeyError(f"no metric {metric!r} (have {', '.join(r.metric for r in self.rows)})")

    def to_json(self) -> list[dict[str, object]]:
        return [r.to_json() for r in self.rows]
