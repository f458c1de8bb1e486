"""``pvq compare --eval``: apply every option to the whole model and measure the model's own quality.

For each recipe chosen by :func:`pvq.compare._eval_recipes.choose_options` (each line at each budget), the
uncompressed baseline and the recommended plan (compare's allocation, read by :func:`pvq.apply.plan_from_allocation`):
:func:`pvq.apply.apply` with calibration from the calibration part of the bundled data, then
:func:`pvq.evaluate.evaluate` on held-out data. Beside the measured metrics each row keeps the proxy this
comparison is checked against: the weight-space SNR of the same compressed model (all compressed weights'
error energy against their signal energy), the quantity ``pvq compare``'s per-tensor sweep ranks options by.

Resumable: each evaluated recipe is appended to ``OUT/partial/eval.jsonl`` (keyed on the source's content and
every option that changes its numbers, :mod:`pvq._outdir`); a rerun evaluates only the recipes it lacks.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pvq._io import append_jsonl, read_jsonl
from pvq.compare._eval_recipes import DEFAULT_LINES, EVAL_BUDGETS, EvalOption, choose_options
from pvq.errors import PvqInputError
from pvq.recipes import parse_recipe

__all__ = [
    "PRIMARY",
    "BudgetWinner",
    "EvalPoint",
    "EvalStage",
    "calibration_for",
    "evaluate_options",
    "run_eval_stage",
]

# The metric that decides a winner, per evaluation kind (ties broken by the second).
PRIMARY = {"lm": ("perplexity", "kl"), "encoder": ("cosine", "retrieval_top1"), "image": ("agreement", "kl")}
# Calibration (batches, batch size, tokens per window): small enough for the 10-minute MobileNetV2 target on
# 2 CPU cores; GPTQ's paper uses 128 windows of 2,048 tokens.
CALIBRATION = {"image": (4, 8, 0), "encoder": (8, 8, 0), "lm": (4, 4, 128)}
Log = Callable[[str], None]


@dataclass(frozen=True)
class EvalPoint:
    """One evaluated model: ``recipe`` (or ``plan:<hash>``), its real ``bits`` per weight over the compressed
    weights, ``metrics`` (metric -> EvalRow JSON), ``weight_snr_db`` (the proxy), ``seconds`` (apply + evaluate)."""

    recipe: str
    bits: float
    metrics: dict[str, dict[str, Any]]
    weight_snr_db: float
    seconds: float
    paper_bits: float = math.nan

    def value(self, metric: str) -> float:
        v = self.metrics[metric]["value"]
        return math.nan if v is None else float(v)

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "bits": self.bits,
            "paper_bits": self.paper_bits,
            "weight_snr_db": self.weight_snr_db,
            "seconds": self.seconds,
            "metrics": list(self.metrics.values()),
        }

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> EvalPoint:
        return EvalPoint(
            str(d["recipe"]),
            float(d["bits"]),
            {m["metric"]: dict(m) for m in d["metrics"]},
            float(d["weight_snr_db"]),
            float(d["seconds"]),
            float(d.get("paper_bits", math.nan)),
        )


@dataclass(frozen=True)
class BudgetWinner:
    """At ``budget``: the measured winner among every option evaluated there, the SNR-proxy winner among the same
    options, and the best quantization and the best pruning-only option (unstructured or N:M without quantized
    codes; ``None`` when none fitted)."""

    budget: float
    measured: EvalOption
    proxy: EvalOption
    best_quantization: EvalOption | None
    best_pruning: EvalOption | None

    @property
    def agree(self) -> bool:
        return self.measured.recipe == self.proxy.recipe


@dataclass
class EvalStage:
    """Everything ``--eval`` measured. ``kind``: lm | encoder | image; ``primary``: the deciding metric."""

    model: str
    kind: str
    options: list[EvalOption]
    points: dict[str, EvalPoint]
    baseline: EvalPoint
    plan: EvalPoint | None
    plan_bits_budget: float | None
    calibration: str
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def primary(self) -> str:
        return PRIMARY[self.kind][0]

    @property
    def metric_order(self) -> tuple[str, str]:
        """(deciding metric, tie-breaker)."""
        return PRIMARY[self.kind]

    @property
    def direction(self) -> str:
        from pvq.evaluate import DIRECTIONS

        return DIRECTIONS[self.primary]

    def score(self, recipe: str) -> tuple[float, float]:
        """Larger is better: the primary metric (negated when lower is better), then the tie-breaker."""
        from pvq.evaluate import DIRECTIONS

        p = self.points[recipe]
        out = []
        for m in PRIMARY[self.kind]:
            v = p.value(m)
            v = -math.inf if math.isnan(v) else v
            out.append(v if DIRECTIONS[m] == "higher" else -v)
        return (out[0], out[1])

    def winners(self) -> list[BudgetWinner]:
        """One :class:`BudgetWinner` per budget with at least one evaluated option, budgets ascending."""
        out = []
        for b in sorted({o.budget for o in self.options}):
            here = [o for o in self.options if o.budget == b and o.recipe in self.points]
            if not here:
                continue
            best = max(here, key=lambda o: self.score(o.recipe))
            proxy = max(here, key=lambda o: self.points[o.recipe].weight_snr_db)
            quant = [o for o in here if o.family == "quantization"]
            # pruning alone: the N:M line's candidates with INT-B codes are pruning + quantization, not pruning
            prune = [o for o in here if o.family in ("pruning", "n:m") and parse_recipe(o.recipe).quant is None]
            out.append(
                BudgetWinner(
                    b,
                    best,
                    proxy,
                    max(quant, key=lambda o: self.score(o.recipe)) if quant else None,
                    max(prune, key=lambda o: self.score(o.recipe)) if prune else None,
                )
            )
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows for eval.csv/json: one per (option or baseline or plan) and metric."""
        entries: list[tuple[str, str, float | None, EvalPoint]] = [("baseline", "fp16", None, self.baseline)]
        entries += [(o.line, o.family, o.budget, self.points[o.recipe]) for o in self.options if o.recipe in self.points]
        if self.plan is not None:
            entries.append(("recommended plan", "mixed", self.plan_bits_budget, self.plan))
        out = []
        for line, fam, budget, p in entries:
            for m in p.metrics.values():
                out.append(
                    {
                        "line": line,
                        "family": fam,
                        "budget_bits": budget,
                        "recipe": p.recipe,
                        "bits_per_weight": p.bits,
                        "paper_bits_per_weight": p.paper_bits,
                        "weight_snr_db": p.weight_snr_db,
                        **{k: v for k, v in m.items() if k not in ("recipe", "bits_per_weight")},
                        "seconds": p.seconds,
                    }
                )
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "kind": self.kind,
            "primary_metric": self.primary,
            "direction": self.direction,
            "calibration": self.calibration,
            "baseline": self.baseline.to_json(),
            "plan": self.plan.to_json() if self.plan is not None else None,
            "by_budget": [
                {
                    "budget_bits": w.budget,
                    "measured_winner": w.measured.recipe,
                    "measured_value": self.points[w.measured.recipe].value(self.primary),
                    "proxy_winner": w.proxy.recipe,
                    "proxy_agrees": w.agree,
                    "best_quantization": w.best_quantization.recipe if w.best_quantization else None,
                    "best_quantization_value": self.points[w.best_quantization.recipe].value(self.primary)
                    if w.best_quantization
                    else None,
                    "best_pruning": w.best_pruning.recipe if w.best_pruning else None,
                    "best_pruning_value": self.points[w.best_pruning.recipe].value(self.primary)
                    if w.best_pruning
                    else None,
                }
                for w in self.winners()
            ],
            "notes": self.notes,
            "seconds": self.seconds,
        }


class _CachedReference(nn.Module):
    """The uncompressed model, its outputs remembered per input (keyed by the inputs' bytes), so that evaluating
    many compressed models against it runs it once per input batch instead of once per model."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self._cache: dict[str, Any] = {}

    @staticmethod
    def _key(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        h = hashlib.blake2b(digest_size=16)
        for k, v in [*enumerate(args), *sorted(kwargs.items())]:
            h.update(str(k).encode())
            if isinstance(v, torch.Tensor):
                h.update(str((tuple(v.shape), v.dtype)).encode())
                h.update(v.detach().contiguous().cpu().numpy().tobytes())
            else:
                h.update(repr(v).encode())
        return h.hexdigest()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        key = self._key(args, kwargs)
        if key not in self._cache:
            self._cache[key] = self.module(*args, **kwargs)
        return self._cache[key]


def _weight_snr_db(original: nn.Module, compressed: Any) -> float:
    """10 log10(sum ||W||^2 / sum ||W - W_c||^2) over the weights ``compressed`` (a CompressedModel) compressed."""
    names = {r.name for r in compressed.rows if r.status == "compressed"}
    ref = dict(original.named_parameters(remove_duplicate=False))
    new = dict(compressed.module.named_parameters(remove_duplicate=False))
    sig = err = 0.0
    for n in names:
        w, q = ref[n].detach().double(), new[n].detach().double()
        sig += float((w * w).sum())
        err += float(((w - q) ** 2).sum())
    if err == 0.0:
        return math.inf
    return 10.0 * math.log10(sig / err) if sig > 0 else -math.inf


def calibration_for(name: str | None, kind: str, data: str | None, seed: int) -> tuple[list[Any], str]:
    """Calibration batches (the calibration part of the bundled data, never the held-out part) and a note."""
    nb, bs, seq = CALIBRATION[kind]
    if name is not None and data is None:
        from pvq.models import calibration_batches

        b = calibration_batches(name, nb, seed=seed, batch_size=bs, seq_len=seq or 128, disjoint=True)
        what = {"image": "photo crops", "encoder": "sentences", "lm": f"windows of {seq} tokens"}[kind]
        return b, f"{nb * bs} {what} from the calibration part of the bundled data (held-out part excluded)"
    if kind != "image":
        raise PvqInputError("--eval: a text model needs its bundled data or a text file for calibration")
    if data is not None:
        from pvq.data import image_folder

        x = image_folder(data, size=224).tensors[0][: nb * bs]
        return list(x.split(bs)), f"{len(x)} images from {data} (224x224)"
    from pvq.data import imagenet_normalize, sample_photo_crops
    from pvq.models._calibration import CALIBRATION_REGION

    x = imagenet_normalize(sample_photo_crops(nb * bs, 224, seed, CALIBRATION_REGION))
    return list(x.split(bs)), f"{nb * bs} crops of scikit-learn's sample photos (ImageNet normalisation)"


def _measurer(name: str, kind: str) -> Callable[[nn.Module, nn.Module, str, float], Sequence[Any]]:
    """``(module, reference, recipe, bits) -> EvalRows``: :func:`pvq.evaluate.evaluate` on its held-out defaults.
    For image models the photo views are built once here and scored with :func:`pvq.evaluate.classifier_metrics`
    (what ``evaluate`` does for them), since decoding and resizing the photos cost more than scoring a model."""
    from pvq.evaluate import EvalRow, classifier_metrics, evaluate, photo_views

    if kind != "image":
        return lambda m, ref, recipe, bits: evaluate(m, ref, name=name, kind=kind, recipe=recipe, bits_per_weight=bits).rows
    from pvq.models import InputSpec, input_spec

    try:
        spec = input_spec(name)
    except PvqInputError:
        spec = InputSpec("image")
    views = photo_views(spec.mean, spec.std, spec.size, spec.resize)

    def measure(m: nn.Module, ref: nn.Module, recipe: str, bits: float) -> Sequence[Any]:
        m.eval()
        return [
            EvalRow(name, recipe, float(bits), metric, v, b, "held-out", n, lo, hi, iv)
            for metric, v, b, n, lo, hi, iv in classifier_metrics(m, ref, views)
        ]

    return measure


def evaluate_options(
    model: nn.Module,
    *,
    name: str,
    kind: str,
    calibration: Sequence[Any] | None,
    budgets: Sequence[float] = EVAL_BUDGETS,
    lines: Sequence[str] = DEFAULT_LINES,
    plan: Any = None,
    plan_budget: float | None = None,
    cache: Path | None = None,
    calibration_note: str = "",
    log: Log | None = None,
) -> EvalStage:
    """Apply each line's recipe at each budget to ``model`` and evaluate it (see the module docstring), budget by
    budget in the order of ``budgets``.

    ``plan``: a :class:`pvq.recipes.Plan` to evaluate as the recommended plan (point); ``cache``: a JSONL file of
    evaluated recipes, read first and appended to (the caller binds it to the inputs). ``name`` is a bundled
    model's name (its held-out data) or a label for a user's image model (``kind="image"``).
    """
    import pvq.apply
    from pvq.apply._apply import _weight_params

    say = log or (lambda _m: None)
    t0 = time.perf_counter()
    model.eval()
    shapes = {p.names[0]: tuple(p.param.shape) for p in _weight_params(model) if p.kind() in ("linear", "conv")}
    if not shapes:
        raise PvqInputError(f"{name}: no conv/linear weights to compress")
    options, notes = choose_options(shapes, budgets, lines)
    done = {r["recipe"]: EvalPoint.from_json(r) for r in (read_jsonl(cache) if cache is not None else []) if "recipe" in r}
    if done:
        say(f"eval: resuming, {len(done)} model(s) already evaluated")
    reference = _CachedReference(model)
    measure = _measurer(name, kind)

    def run(key: str, what: Any) -> EvalPoint:
        if key in done:
            return done[key]
        t = time.perf_counter()
        with torch.no_grad():
            if key == "none":
                module, bits, paper, snr = model, 16.0, 16.0, math.inf
            else:
                cm = pvq.apply(model, what, calibration)
                module, bits, paper, snr = cm.module, cm.bits_per_weight, cm.paper_bits_per_weight, _weight_snr_db(model, cm)
            rows = measure(module, reference, key, bits)
        point = EvalPoint(key, bits, {r.metric: r.to_json() for r in rows}, snr, time.perf_counter() - t, paper)
        if cache is not None:
            append_jsonl(cache, [point.to_json()])
        done[key] = point
        return point

    # budget by budget, in the order given: an interrupted run has whole budgets (every line) to compare
    rank = {float(b): i for i, b in enumerate(budgets)}
    todo = ["none", *dict.fromkeys(o.recipe for o in sorted(options, key=lambda o: rank[o.budget]))]
    n_all = len(todo) + (plan is not None)
    prim = PRIMARY[kind][0]
    for i, recipe in enumerate(todo, 1):
        p = run(recipe, recipe)
        say(f"eval {i}/{n_all}: {recipe} ({p.bits:.3g} bits/weight): {prim} {p.value(prim):.4g} [{p.seconds:.0f} s]")
    plan_point = None
    if plan is not None:
        digest = hashlib.blake2b(json.dumps(plan.to_json(), sort_keys=True).encode(), digest_size=6).hexdigest()
        plan_point = run(f"plan:{digest}", plan)
        say(f"eval {n_all}/{n_all}: recommended plan ({plan_point.bits:.3g} bits/weight): {prim} {plan_point.value(prim):.4g}")
    return EvalStage(
        model=name,
        kind=kind,
        options=options,
        points=done,
        baseline=done["none"],
        plan=plan_point,
        plan_bits_budget=plan_budget,
        calibration=calibration_note,
        notes=notes,
        seconds=time.perf_counter() - t0,
    )


def run_eval_stage(cfg: Any, allocation: Any, folder: Any, log: Log) -> tuple[EvalStage | None, str]:
    """The ``--eval`` stage of ``pvq compare`` for ``cfg.source``: (stage, note). ``None`` with a note saying why
    when the source cannot be run (a weights-only file has no architecture) or evaluated."""
    from pvq._outdir import source_fingerprint
    from pvq.apply import plan_from_allocation
    from pvq.apply._apply import check_plan
    from pvq.apply._source import load_model_source

    try:
        src = load_model_source(cfg.source, getattr(cfg, "arch", None))  # --arch: the user's architecture
    except PvqInputError as exc:
        return None, f"No model-level evaluation: {exc}"
    kind = {"smollm2": "lm", "minilm": "encoder"}.get(src.bundled or "", "image")
    if src.bundled is None and src.modality not in (None, "image"):
        return None, f"No model-level evaluation: {src.label} is not an image model"
    name = src.bundled or src.label
    batches, note = calibration_for(src.bundled, kind, cfg.data, cfg.seed)
    key = {
        "source": cfg.source,
        "source_content": source_fingerprint(cfg.source),
        "data": cfg.data,
        "data_content": source_fingerprint(cfg.data, hash_content=False) if cfg.data is not None else None,
        "seed": cfg.seed,
        "calibration": list(CALIBRATION[kind]),
        "evaluation": "pvq.evaluate held-out defaults",
        **({"arch": cfg.arch} if getattr(cfg, "arch", None) else {}),
    }
    folder.claim("partial/eval.jsonl", key)
    plan, plan_note = None, ""
    try:
        plan = plan_from_allocation(allocation.rows())
        check_plan(src.module, plan)
    except PvqInputError as exc:
        plan = None
        plan_note = f"the recommended plan was not evaluated: it cannot be applied to the runnable model ({exc})"
        log(f"eval: {plan_note}")
    try:
        stage = evaluate_options(
            src.module,
            name=name,
            kind=kind,
            calibration=batches,
            budgets=cfg.eval_budgets,
            lines=cfg.eval_lines,
            plan=plan,
            plan_budget=allocation.budget_bits,
            cache=folder.path / "partial" / "eval.jsonl",
            calibration_note=note,
            log=log,
        )
    except (RuntimeError, ValueError) as exc:  # a user's module that does not take 224x224 photos
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"No model-level evaluation: {name} could not be run on the evaluation inputs ({msg})"
    if plan_note:
        stage.notes.append(plan_note)
    return stage, ""
