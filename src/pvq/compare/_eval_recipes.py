"""Which whole-model recipes ``pvq compare --eval`` applies at each budget (pure: shapes in, recipes out).

A *line* is one way to compress (a format and granularity, a pruning criterion, N:M, pruning plus quantization)
with a free parameter: the bit-width B of ``intB`` or the sparsity S of ``pruneS``. At a budget of ``b`` real
bits per weight each line takes the candidate whose real bits (:func:`pvq.recipes.recipe_bits`, weighted by
size over the weights that are compressed) are closest to ``b`` without exceeding it; a line with no candidate
that fits is left out at that budget, and :class:`EvalOption` keeps the bits so the report can say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pvq.recipes import recipe_bits

__all__ = [
    "DEFAULT_LINES",
    "EVAL_BUDGETS",
    "LINES",
    "EvalOption",
    "Line",
    "choose_options",
    "model_bits",
    "parse_lines",
]

EVAL_BUDGETS = (2.0, 3.0, 4.0, 8.0)
_BITS = range(2, 9)  # the grammar's integer formats: int2 .. int8


@dataclass(frozen=True)
class Line:
    """One line of the figure: ``key`` (CLI name), ``family`` (quantization | pruning | n:m | quant+prune) and
    its candidate recipes, any order."""

    key: str
    family: str
    candidates: tuple[str, ...]


LINES: dict[str, Line] = {
    line.key: line
    for line in (
        Line("int:channel:rtn", "quantization", tuple(f"int{b}:channel:rtn" for b in _BITS)),
        Line("int:g128:rtn", "quantization", tuple(f"int{b}:g128:rtn" for b in _BITS)),
        Line("int:g128:gptq", "quantization", tuple(f"int{b}:g128:gptq" for b in _BITS)),
        Line("prune:magnitude", "pruning", tuple(f"prune{s}:magnitude" for s in range(1, 100))),
        Line("prune:wanda", "pruning", tuple(f"prune{s}:wanda" for s in range(1, 100))),
        Line("prune:sparsegpt", "pruning", tuple(f"prune{s}:sparsegpt" for s in range(1, 100))),
        # 2:4 alone costs 8 code bits + a 1-bit mask = 9 bits, over every budget up to 8: with INT-B codes it fits
        Line(
            "2:4:sparsegpt",
            "n:m",
            ("2:4:sparsegpt", *(f"2:4:sparsegpt+int{b}:g128:gptq" for b in _BITS)),
        ),
        Line(
            "prune50:sparsegpt+int:g128:gptq",
            "quant+prune",
            tuple(f"prune50:sparsegpt+int{b}:g128:gptq" for b in _BITS),
        ),
    )
}
# The default set: one line per family and granularity that fits MobileNetV2's 10-minute target on 2 cores
# (benchmarks/bench_compare_eval.py); the others are chosen with --eval-options.
DEFAULT_LINES = (
    "int:channel:rtn",
    "int:g128:gptq",
    "prune:magnitude",
    "prune:sparsegpt",
    "2:4:sparsegpt",
    "prune50:sparsegpt+int:g128:gptq",
)


@dataclass(frozen=True)
class EvalOption:
    """One recipe to evaluate: on ``line`` (of ``family``) at ``budget`` bits per weight, ``bits`` real bits per
    weight over the compressed weights (``<= budget``)."""

    line: str
    family: str
    budget: float
    recipe: str
    bits: float


def parse_lines(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Line keys from ``--eval-options`` (comma-separated, or ``all``); ValueError naming unknown keys."""
    if text is None:
        return DEFAULT_LINES
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if items == ["all"]:
        return tuple(LINES)
    bad = [s for s in items if s not in LINES]
    if bad or not items:
        raise ValueError(
            f"--eval-options: unknown option(s) {', '.join(bad) or '(none given)'}; choose from all, {', '.join(LINES)}"
        )
    return tuple(dict.fromkeys(items))


def model_bits(recipe: str, shapes: Mapping[str, Sequence[int]]) -> float:
    """Real bits per weight of ``recipe`` applied to every weight in ``shapes`` (name -> shape), size-weighted."""
    total = n_all = 0.0
    for shape in shapes.values():
        n = 1
        for d in shape:
            n *= int(d)
        total += recipe_bits(recipe, shape).total * n
        n_all += n
    if n_all == 0:
        raise ValueError("model_bits: no weights")
    return total / n_all


def choose_options(
    shapes: Mapping[str, Sequence[int]], budgets: Sequence[float], lines: Sequence[str] = DEFAULT_LINES
) -> tuple[list[EvalOption], list[str]]:
    """The recipe of each line at each budget (closest real bits not above it), and one note per line/budget
    with no candidate that fits (naming the cheapest candidate's real bits)."""
    options: list[EvalOption] = []
    notes: list[str] = []
    cache: dict[str, float] = {}
    for key in lines:
        line = LINES[key]
        bits = {r: cache.setdefault(r, model_bits(r, shapes)) for r in line.candidates}
        for b in budgets:
            fits = [r for r in line.candidates if bits[r] <= b + 1e-9]
            if not fits:
                cheapest = min(line.candidates, key=bits.__getitem__)
                notes.append(
                    f"{key}: nothing fits {b:g} bits per weight (the cheapest, {cheapest}, needs {bits[cheapest]:.3f})"
                )
                continue
            best = max(fits, key=lambda r: bits[r])
            options.append(EvalOption(key, line.family, float(b), best, bits[best]))
    return options, notes
