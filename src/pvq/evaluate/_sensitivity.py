"""Per-layer sensitivity measured at the model level, and a per-tensor plan that is never worse than uniform.

Sensitivity of layer ``l`` to recipe ``r``: compress ``l`` ALONE (a one-tensor :class:`pvq.recipes.Plan`
through :func:`pvq.apply.apply`) and measure the model's metric on fixed held-out inputs against the cached
uncompressed outputs:

- image classifiers: mean KL(reference || model) of the class distributions over photo views (nats), and the
  top-1 agreement;
- language models: mean next-token KL(reference || model) per predicted token over held-out text (nats);
- sentence encoders: mean ``1 - cosine`` between compressed and uncompressed sentence embeddings.

Every metric here is 0 for the uncompressed model, so the measured value IS the change (the delta). The same
forward pass also records the compressed layer's output SNR (its output against the uncompressed layer's on the
same input — the inputs are identical, since no earlier layer is compressed) and the weight SNR: the two
proxies the paper uses (App. D: output SNR; Sec. 3: weight SNR).

The sweep is meant for calibration-free recipes (``rtn``/``absmax`` quantization, ``magnitude`` pruning):
each point is one deep copy and one forward pass. Calibration recipes work too (pass ``calibration``) but
every point then recaptures calibration inputs.

Measurements are cached in a JSONL file keyed on the model's content (sha256 of its state dict), the plan and
the evaluation data, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pvq._io import append_jsonl, read_jsonl
from pvq.errors import PvqInputError
from pvq.metrics import snr_db
from pvq.recipes import Plan, parse_recipe, recipe_bits

__all__ = [
    "Probe",
    "Measurement",
    "SensitivityRow",
    "PlanDecision",
    "make_probe",
    "model_key",
    "measure_plan",
    "measure_sensitivity",
    "sensitivity_options",
    "recipe_family",
    "uniform_bits",
    "measured_plan",
]

_MEASURE_VERSION = 1  # bump when what a cached measurement means changes


@dataclass(frozen=True, eq=False)
class Probe:
    """Fixed evaluation inputs and the uncompressed model's outputs on them.

    ``kind``: image | lm | encoder. ``inputs``: image batch (N, 3, H, W); for ``lm`` a list of (1, T) token-id
    windows; for ``encoder`` a list of sentences. ``reference_out``: image logits (N, C); lm log-probabilities
    (sum_T-1, V); encoder embeddings (N, D). ``metric``: the metric name (``kl`` or ``1-cosine``, 0 for the
    uncompressed model, lower is better). ``data_key``: identifies the data (for the cache). ``n``: examples.
    """

    kind: str
    name: str
    inputs: Any
    reference_out: torch.Tensor
    metric: str
    data_key: str
    n: int
    tokenizer: Any = None


@dataclass(frozen=True)
class Measurement:
    """One model (with some tensors compressed) measured on a probe. ``value``: the probe's metric (the change
    against the uncompressed model); ``agreement``: top-1 agreement (image classifiers, else NaN);
    ``output_snr_db``: SNR (dB) of the output of ``layer`` when one was named, else NaN."""

    value: float
    agreement: float = math.nan
    output_snr_db: float = math.nan


@dataclass(frozen=True)
class SensitivityRow:
    """Layer ``layer`` (state-dict weight name, ``numel`` weights) compressed alone with ``recipe``.
    ``bits``: real bits per weight of that tensor; ``metric``/``value``: the model-level change;
    ``weight_snr_db``/``output_snr_db``: the proxies."""

    model: str
    layer: str
    recipe: str
    family: str
    numel: int
    bits: float
    metric: str
    value: float
    agreement: float
    weight_snr_db: float
    output_snr_db: float

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass(frozen=True)
class PlanDecision:
    """What :func:`measured_plan` returns for one budget (real bits per weight over the layers considered).

    ``chosen``: ``knapsack`` or ``uniform RECIPE`` (when a uniform baseline measured better than the knapsack's
    plan, that uniform is returned: it is a feasible plan); ``plan``/``bits``/``value``: the returned plan, its
    real bits per weight and measured metric. ``predicted``: the knapsack's sum of single-layer changes (the
    additive estimate) and ``knapsack_value``/``knapsack_bits`` its measured value and bits; ``uniforms``:
    (recipe, bits, measured value) of every uniform baseline within the budget; ``certified``: HiGHS proved the
    knapsack optimal for the additive objective."""

    budget_bits: float
    metric: str
    chosen: str
    plan: Plan
    bits: float
    value: float
    predicted: float
    knapsack_value: float
    knapsack_bits: float
    uniforms: tuple[tuple[str, float, float], ...]
    certified: bool

    @property
    def best_uniform(self) -> tuple[str, float, float] | None:
        return min(self.uniforms, key=lambda u: u[2]) if self.uniforms else None

    def to_json(self) -> dict[str, Any]:
        bu = self.best_uniform
        return {
            "budget_bits": self.budget_bits,
            "metric": self.metric,
            "chosen": self.chosen,
            "bits": self.bits,
            "value": self.value,
            "predicted": self.predicted,
            "knapsack_value": self.knapsack_value,
            "knapsack_bits": self.knapsack_bits,
            "best_uniform": None if bu is None else {"recipe": bu[0], "bits": bu[1], "value": bu[2]},
            "uniforms": [{"recipe": r, "bits": b, "value": v} for r, b, v in self.uniforms],
            "certified": self.certified,
            "plan": self.plan.to_json(),
        }


# ----------------------------------------------------------------------------------------------- probes


def make_probe(
    reference: nn.Module,
    name: str,
    *,
    kind: str | None = None,
    n_views: int | None = None,
    max_tokens: int = 256,
    window: int = 128,
    max_sentences: int = 64,
    tokenizer: Any = None,
    image_size: tuple[int, int] = (224, 256),
) -> Probe:
    """Held-out inputs (the split :mod:`pvq.evaluate` uses) and ``reference``'s outputs on them.

    image: ``n_views`` evenly spaced of :func:`pvq.evaluate.photo_views` (all 70 when None; a model that is not
    bundled gets ImageNet normalisation at ``image_size`` = (crop, resize)); lm: the first ``max_tokens`` held-out
    tokens in windows of ``window``; encoder: the first ``max_sentences`` held-out sentences."""
    from pvq.evaluate._evaluate import kind_of

    kind = kind or kind_of(name)
    reference.eval()
    if kind == "image":
        from pvq.evaluate._data import photo_views
        from pvq.models import InputSpec, input_spec

        try:
            spec = input_spec(name)
            size, resize = spec.size, spec.resize
        except PvqInputError:
            spec = InputSpec("image")
            size, resize = image_size
        views = photo_views(spec.mean, spec.std, size, resize)
        if n_views is not None:
            if not 1 <= n_views <= len(views):
                raise PvqInputError(f"n_views: must be in 1..{len(views)}, got {n_views}")
            views = views[np.linspace(0, len(views) - 1, n_views).round().astype(int)]
        with torch.no_grad():
            ref = _logits(reference(views)).float()
        key = f"image:{name}:views={len(views)}:{size}/{resize}"
        return Probe("image", name, views, ref, "kl", key, len(views))
    if kind == "lm":
        from pvq.evaluate._data import held_out_text
        from pvq.models import encode_ids, get_tokenizer

        tok = tokenizer if tokenizer is not None else get_tokenizer(name)
        ids = encode_ids(tok, held_out_text(name)[: max_tokens * 12])[:max_tokens]
        if len(ids) < 2 or window < 2:
            raise PvqInputError(f"max_tokens/window: need at least 2 tokens, got {len(ids)}/{window}")
        wins = [torch.tensor([ids[s : s + window]], dtype=torch.int64) for s in range(0, len(ids), window)]
        wins = [w for w in wins if w.shape[1] >= 2]
        with torch.no_grad():
            ref = torch.cat(
                [torch.log_softmax(_logits(reference(input_ids=w))[0, :-1].float(), -1) for w in wins]
            )
        key = f"lm:{name}:tokens={len(ids)}:window={window}"
        return Probe("lm", name, wins, ref, "kl", key, int(ref.shape[0]), tok)
    if kind == "encoder":
        from pvq.evaluate._data import held_out_sentences
        from pvq.models import embed_sentences, get_tokenizer

        tok = tokenizer if tokenizer is not None else get_tokenizer(name)
        sents = held_out_sentences(name, max_sentences)
        with torch.no_grad():
            ref = embed_sentences(reference, tok, sents).float()
        key = f"encoder:{name}:sentences={len(sents)}"
        return Probe("encoder", name, sents, ref, "1-cosine", key, len(sents), tok)
    raise PvqInputError(f"kind: must be image, lm or encoder, got {kind!r}")


def _logits(out: Any) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out


class _OutputError:
    """Forward hook on the compressed layer: its output against the uncompressed layer's on the same input."""

    def __init__(self, reference_layer: nn.Module) -> None:
        self.ref = reference_layer
        self.signal = 0.0
        self.noise = 0.0

    def __call__(self, _mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if not isinstance(out, torch.Tensor):
            return
        y_ref = self.ref(*args).double()
        self.signal += float((y_ref**2).sum())
        self.noise += float(((out.double() - y_ref) ** 2).sum())

    @property
    def snr_db(self) -> float:
        return snr_db(self.signal, self.noise) if self.signal > 0 else math.nan


@torch.no_grad()
def _measure_module(
    module: nn.Module, probe: Probe, layer: str | None = None, reference: nn.Module | None = None
) -> Measurement:
    """``module`` on the probe's inputs; ``layer`` (a weight name) gets its output SNR against ``reference``."""
    module.eval()
    hook = None
    handle = None
    if layer is not None and reference is not None:
        mname = layer.rsplit(".", 1)[0] if layer.endswith(".weight") else layer
        hook = _OutputError(reference.get_submodule(mname))
        handle = module.get_submodule(mname).register_forward_hook(hook)
    try:
        agreement = math.nan
        if probe.kind == "image":
            lo = _logits(module(probe.inputs)).float()
            lp_ref = torch.log_softmax(probe.reference_out.double(), -1)
            lp = torch.log_softmax(lo.double(), -1)
            value = float((lp_ref.exp() * (lp_ref - lp)).sum(-1).mean())
            agreement = float((lo.argmax(-1) == probe.reference_out.argmax(-1)).double().mean())
        elif probe.kind == "lm":
            lp = torch.cat(
                [torch.log_softmax(_logits(module(input_ids=w))[0, :-1].double(), -1) for w in probe.inputs]
            )
            lp_ref = probe.reference_out.double()
            value = float((lp_ref.exp() * (lp_ref - lp)).sum(-1).mean())
        else:
            from pvq.models import embed_sentences

            emb = embed_sentences(module, probe.tokenizer, probe.inputs).double()
            cos = torch.nn.functional.cosine_similarity(emb, probe.reference_out.double(), dim=-1)
            value = float((1.0 - cos).mean())
    finally:
        if handle is not None:
            handle.remove()
    return Measurement(value, agreement, hook.snr_db if hook is not None else math.nan)


# ------------------------------------------------------------------------------------------------ cache


def model_key(model: nn.Module) -> str:
    """sha256 (first 16 hex digits) of the model's state dict: names, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


class _Cache:
    """JSONL of measurements keyed on (model content, plan, probe data, layer measured)."""

    def __init__(self, path: Path | None, model: nn.Module, probe: Probe) -> None:
        self.path = path
        self.prefix = f"v{_MEASURE_VERSION}|{model_key(model)}|{probe.data_key}|{probe.metric}"
        self.rows: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            for r in read_jsonl(path):
                if isinstance(r, dict) and "key" in r:
                    self.rows[str(r["key"])] = r

    def key(self, plan: Plan, layer: str | None) -> str:
        body = json.dumps({"plan": plan.to_json(), "layer": layer}, sort_keys=True)
        return hashlib.sha256(f"{self.prefix}|{body}".encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        return self.rows.get(key)

    def put(self, key: str, row: dict[str, Any]) -> None:
        row = {"key": key, **row}
        self.rows[key] = row
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            append_jsonl(self.path, [row])


def _nan(x: Any) -> float:
    return math.nan if x is None else float(x)


def _measure_plan_cached(
    model: nn.Module,
    plan: Plan,
    probe: Probe,
    cache: _Cache,
    layer: str | None = None,
    calibration: Iterable[Any] | None = None,
) -> tuple[Measurement, float]:
    """(measurement, weight SNR of ``layer`` or NaN) of ``model`` compressed with ``plan``, from the cache when
    there."""
    key = cache.key(plan, layer)
    hit = cache.get(key)
    if hit is not None:
        return (
            Measurement(float(hit["value"]), _nan(hit.get("agreement")), _nan(hit.get("output_snr_db"))),
            _nan(hit.get("weight_snr_db")),
        )
    from pvq.apply import apply

    cm = apply(model, plan, calibration)
    m = _measure_module(cm.module, probe, layer, model if layer is not None else None)
    w_snr = math.nan
    if layer is not None and layer in cm.weights:
        w = model.get_parameter(layer).detach().double()
        q = cm.weights[layer].dequantize().reshape(w.shape).double()
        w_snr = snr_db(float((w**2).sum()), float(((w - q) ** 2).sum()))
    fin = lambda x: None if not math.isfinite(x) else x  # noqa: E731
    cache.put(
        key,
        {
            "plan": plan.to_json(),
            "layer": layer,
            "value": m.value,
            "agreement": fin(m.agreement),
            "output_snr_db": fin(m.output_snr_db),
            "weight_snr_db": fin(w_snr),
        },
    )
    return m, w_snr


def measure_plan(
    model: nn.Module,
    plan: Plan | str,
    probe: Probe,
    *,
    cache: str | Path | None = None,
    calibration: Iterable[Any] | None = None,
) -> Measurement:
    """The probe's metric for ``model`` compressed with ``plan`` (a :class:`Plan` or one recipe for every
    conv/linear weight). Cached in ``cache`` (JSONL) when given. This is the function ``pvq compare --eval``
    can call to measure any option or plan the same way the sensitivity sweep does."""
    p = plan if isinstance(plan, Plan) else Plan({}, parse_recipe(plan))
    c = _Cache(Path(cache) if cache is not None else None, model, probe)
    return _measure_plan_cached(model, p, probe, c, None, calibration)[0]


# ------------------------------------------------------------------------------------------ sensitivity


def recipe_family(recipe: str) -> str:
    """The :data:`pvq.compare._options.FAMILIES` name of a recipe."""
    r = parse_recipe(recipe)
    if r.is_none:
        return "fp16"
    if r.prune is not None and r.quant is not None:
        return "quant+n:m" if r.prune.structured else "quant+prune"
    if r.prune is not None:
        return "n:m" if r.prune.structured else "pruning"
    return "quantization"


def default_layers(model: nn.Module) -> list[str]:
    """Weight names of every conv/linear layer (what ``apply`` compresses by default), in module order."""
    out = []
    seen: set[int] = set()
    for name, mod in model.named_modules():
        if isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d)) and id(mod.weight) not in seen:
            if name.rsplit(".", 1)[-1] == "lm_head":
                continue
            seen.add(id(mod.weight))
            out.append(f"{name}.weight")
    return out


def measure_sensitivity(
    model: nn.Module,
    probe: Probe,
    recipes: Sequence[str],
    *,
    layers: Sequence[str] | None = None,
    cache: str | Path | None = None,
    calibration: Iterable[Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[SensitivityRow]:
    """One row per (layer, recipe): ``model`` with that layer alone compressed, measured on ``probe``.
    ``layers``: weight names (default: every conv/linear weight). Resumable through ``cache``."""
    if not recipes:
        raise PvqInputError("recipes: need at least one recipe")
    canon = [str(parse_recipe(r)) for r in recipes]
    names = list(layers) if layers is not None else default_layers(model)
    params = dict(model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise PvqInputError(f"layers: the model has no weight named {', '.join(missing[:5])}")
    c = _Cache(Path(cache) if cache is not None else None, model, probe)
    say = progress or (lambda _m: None)
    rows = []
    total = len(names) * len(canon)
    for i, n in enumerate(names):
        shape = tuple(params[n].shape)
        for j, r in enumerate(canon):
            m, w_snr = _measure_plan_cached(model, Plan({n: parse_recipe(r)}), probe, c, n, calibration)
            rows.append(
                SensitivityRow(
                    probe.name,
                    n,
                    r,
                    recipe_family(r),
                    int(params[n].numel()),
                    recipe_bits(r, shape).total,
                    probe.metric,
                    m.value,
                    m.agreement,
                    w_snr,
                    m.output_snr_db,
                )
            )
            say(f"[{i * len(canon) + j + 1}/{total}] {n} {r}: {probe.metric} {m.value:.4g}")
    return rows


# --------------------------------------------------------------------------------------- plan selection


def sensitivity_options(rows: Sequence[SensitivityRow], keep_fp16: bool = True) -> dict[str, list[Any]]:
    """Knapsack options per layer from measured rows: cost = real bits, error = the measured change (clamped at
    0: a change below zero is measurement noise of an improvement the additive model cannot use). With
    ``keep_fp16`` every layer may also stay uncompressed (16 bits, error 0)."""
    from pvq.compare._options import Option

    out: dict[str, list[Any]] = {}
    for r in rows:
        err = max(r.value, 0.0)
        snr = math.inf if err <= 0 else -10.0 * math.log10(err)
        out.setdefault(r.layer, []).append(Option(r.family, r.recipe, r.bits, snr))
    if keep_fp16:
        for opts in out.values():
            opts.append(Option("fp16", "none", 16.0, math.inf))
    return out


def uniform_bits(recipe: str, shapes: Mapping[str, tuple[int, ...]]) -> float:
    """Real bits per weight over ``shapes`` when every tensor gets ``recipe``."""
    n = sum(math.prod(s) for s in shapes.values())
    return sum(recipe_bits(recipe, s).total * math.prod(s) for s in shapes.values()) / n


def _plan_bits(plan: Plan, shapes: Mapping[str, tuple[int, ...]]) -> float:
    n = sum(math.prod(s) for s in shapes.values())
    return sum(recipe_bits(plan.recipe_for(k), s).total * math.prod(s) for k, s in shapes.items()) / n


@dataclass
class _Tried:
    label: str
    plan: Plan
    bits: float
    value: float
    extra: dict[str, Any] = field(default_factory=dict)


def measured_plan(
    model: nn.Module,
    probe: Probe,
    rows: Sequence[SensitivityRow],
    budget_bits: float,
    *,
    cache: str | Path | None = None,
    calibration: Iterable[Any] | None = None,
    time_limit_s: float = 20.0,
) -> PlanDecision:
    """The plan for ``budget_bits`` real bits per weight (over the layers in ``rows``) that is never worse than
    uniform in the measured metric.

    1. Exact multiple-choice knapsack (:func:`pvq.compare._budget.allocate`, HiGHS) with each layer's measured
       single-layer change as its error: the additive estimate of the model's change.
    2. The chosen plan is applied to the whole model and measured (additivity is an approximation).
    3. Every uniform baseline (one recipe of ``rows`` for all these layers) whose real bits fit the budget is
       measured the same way. If one is better than the knapsack's plan, it is returned instead (a uniform
       assignment is a feasible plan), so the result is never worse than any uniform baseline within the
       budget, by construction. Raises PvqInputError when no option mix fits the budget.
    """
    from pvq.compare._budget import allocate

    params = dict(model.named_parameters())
    layers = list(dict.fromkeys(r.layer for r in rows))
    shapes = {n: tuple(params[n].shape) for n in layers}
    sizes = {n: int(params[n].numel()) for n in layers}
    options = sensitivity_options(rows)
    try:
        alloc = allocate(options, sizes, budget_bits, label="measured", time_limit_s=time_limit_s)
    except ValueError as exc:
        raise PvqInputError(str(exc)) from None
    c = _Cache(Path(cache) if cache is not None else None, model, probe)
    kplan = Plan({n: parse_recipe(o.label) for n, o in alloc.choices.items()})
    kval = _measure_plan_cached(model, kplan, probe, c, None, calibration)[0].value
    kbits = _plan_bits(kplan, shapes)
    predicted = sum(max(o.rel_error, 0.0) for o in alloc.choices.values())
    uniforms = []
    for r in dict.fromkeys(x.recipe for x in rows):
        b = uniform_bits(r, shapes)
        if b <= budget_bits * (1 + 1e-12):
            up = Plan({n: parse_recipe(r) for n in layers})
            uniforms.append((r, b, _measure_plan_cached(model, up, probe, c, None, calibration)[0].value, up))
    chosen, plan, bits, value = "knapsack", kplan, kbits, kval
    for r, b, v, up in uniforms:
        if v < value:
            chosen, plan, bits, value = f"uniform {r}", up, b, v
    return PlanDecision(
        budget_bits,
        probe.metric,
        chosen,
        plan,
        bits,
        value,
        predicted,
        kval,
        kbits,
        tuple((r, b, v) for r, b, v, _ in uniforms),
        alloc.certified,
    )
