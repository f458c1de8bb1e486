"""One ``pvq compare`` run: load -> tensor sweep (+ extra options) -> layer-wise sample -> verdicts.

Resumable: every tensor's measurements are appended to ``OUT/partial/tensors.jsonl`` as soon as they
are computed, and every solved layer chunk to ``OUT/partial/layers.jsonl``; a restarted run skips what is
there. Each partial file is keyed (:mod:`pvq._outdir`) on the source's content and every option that
changes its numbers: a run with other inputs is refused rather than mixed with them, and ``OUT`` is
locked against a second run while this one writes. Library code: returns a :class:`CompareResult`, never
prints (``log`` receives one-line stage messages; loops report through :func:`pvq._progress.progress`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from pvq._defaults import COMPARE_LAYER_TIME_S
from pvq._io import append_jsonl, atomic_write_text, read_jsonl, to_jsonable
from pvq._outdir import OutputFolder
from pvq._progress import progress
from pvq.compare._budget import Allocation, allocate, parse_budget, uniform_allocation
from pvq.compare._deploy_stage import DEPLOY_BATCHES, DEPLOY_OPTIONS, check_deploy_options
from pvq.compare._eval_recipes import DEFAULT_LINES, EVAL_BUDGETS, parse_lines
from pvq.compare._measure import extra_options
from pvq.compare._options import Option, applied_costs, options_from_rows
from pvq.compare._verdict import LayerVerdict, TensorVerdict, bits_summary, layer_verdicts, tensor_verdicts
from pvq.errors import PvqInputError

__all__ = ["CompareConfig", "CompareResult", "run_compare", "BUDGET_GRID", "DEFAULT_GRANULARITY"]

FLOAT_FORMATS = ("fp8_e4m3", "fp4_e2m1", "nf4")  # reported by the sweep on the row of their bit-width
BUDGET_GRID = tuple(x / 2 for x in range(4, 17))  # 2.0 .. 8.0 bits per weight, for the budget curve
# the tensor stage's default granularities: what deployments use beside the paper's per-tensor scale
DEFAULT_GRANULARITY = ("tensor", "channel", "g128")
Log = Callable[[str], None]


@dataclass(frozen=True)
class CompareConfig:
    """Everything that defines a ``pvq compare`` run (saved as ``config.json``).

    ``source``: bundled model name or path; ``bits``: bit budgets (2..8); ``budget``: total size for the
    model-level recommendation (``parse_budget`` syntax: bits/weight, ``25%`` of FP16, ``1.5MB``);
    ``count_overhead``: add mask/N:M metadata to pruning's size in the headline verdict and the
    recommendation (``False``: the paper's accounting there too); the paper's mask-free accounting is
    always reported beside it; ``layers``/``chunks``: how many layers and chunks
    per layer the layer-wise comparison samples (0 layers: skip); ``calib_samples``: calibration inputs;
    ``solve_time_s``: time limit per exact solve; ``layer_time_s``: total time for the layer-wise stage;
    ``eval``: apply each option of ``eval_lines`` at each of ``eval_budgets`` (real bits per weight) to the
    whole model and measure its quality on held-out data (:mod:`pvq.compare._eval_stage`);
    ``granularity``: quantization granularities (``tensor``, ``channel``, ``gN``, ``uint:...``) the tensor
    stage compares with magnitude pruning at equal *real* bits per weight (:mod:`pvq.tensors._granular`);
    empty: only the paper's per-tensor comparison.
    ``deploy``: build each of ``deploy_options`` as a deployed artifact and measure real bytes, latency ratio vs
    FP32 at each of ``deploy_batches`` (median of ``deploy_repeats``) and quality (:mod:`pvq.compare._deploy_stage`).
    """

    source: str = "mobilenet_v2"
    bits: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    out: Path = Path("pvq-compare-mobilenet_v2")
    data: str | None = None
    budget: str = "4"
    count_overhead: bool = True
    layers: int = 2
    chunks: int = 4
    calib_samples: int = 8
    opt_dim: int = 32
    solve_time_s: float = 2.0
    layer_time_s: float = COMPARE_LAYER_TIME_S
    seed: int = 0
    eval: bool = True
    eval_budgets: tuple[float, ...] = EVAL_BUDGETS
    eval_lines: tuple[str, ...] = DEFAULT_LINES
    granularity: tuple[str, ...] = DEFAULT_GRANULARITY
    arch: str | None = None
    deploy: bool = False
    deploy_options: tuple[str, ...] = DEPLOY_OPTIONS
    deploy_batches: tuple[int, ...] = DEPLOY_BATCHES
    deploy_repeats: int = 5

    def __post_init__(self) -> None:
        if not self.bits:
            raise PvqInputError("--bits: no bit-widths given")
        for b in self.bits:
            if not (isinstance(b, int) and 2 <= b <= 8):
                raise PvqInputError(f"--bits: bit-widths must be integers in 2..8, got {b}")
        # each check names only its own argument (calib_samples, opt_dim and solve_time_s are not flags of compare)
        for ok, what in (
            (self.layers >= 0, f"--layers: must be >= 0 (0 skips the layer-wise stage), got {self.layers}"),
            (self.chunks >= 1, f"--chunks: must be >= 1, got {self.chunks}"),
            (self.layer_time_s >= 0, f"--layer-time: must be >= 0 seconds, got {self.layer_time_s}"),
            (self.calib_samples >= 1, f"calib_samples: must be >= 1, got {self.calib_samples}"),
            (self.opt_dim >= 2, f"opt_dim: must be >= 2, got {self.opt_dim}"),
            (self.solve_time_s > 0, f"solve_time_s: must be > 0 seconds, got {self.solve_time_s}"),
        ):
            if not ok:
                raise PvqInputError(what)
        if not self.eval_budgets or any(not (1.0 <= float(b) <= 16.0) for b in self.eval_budgets):
            raise PvqInputError(f"--eval-budgets: need bits per weight in 1..16, got {list(self.eval_budgets)}")
        try:
            parse_lines(list(self.eval_lines))
        except ValueError as exc:
            raise PvqInputError(str(exc)) from None
        from pvq.tensors import parse_granularities

        object.__setattr__(self, "granularity", tuple(g.label for g in parse_granularities(self.granularity)))
        if self.deploy:
            if not self.deploy_batches or any(not 1 <= int(b) <= 256 for b in self.deploy_batches):
                raise PvqInputError(f"--deploy-batch: batch sizes must be in 1..256, got {list(self.deploy_batches)}")
            if self.deploy_repeats < 1:
                raise PvqInputError(f"--deploy-repeats: must be >= 1, got {self.deploy_repeats}")
            check_deploy_options(self.deploy_options)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["bits"] = list(self.bits)
        d["eval_budgets"] = list(self.eval_budgets)
        d["eval_lines"] = list(self.eval_lines)
        d["granularity"] = list(self.granularity)
        d["deploy_options"] = list(self.deploy_options)
        d["deploy_batches"] = list(self.deploy_batches)
        return d

    def fingerprint(self) -> dict[str, dict[str, Any]]:
        """The options each partial results file depends on (the source's and the calibration data's
        content are added by the run): every option that changes a number in it. ``layer_time_s`` and
        ``budget`` only decide how much is done and what is done with the rows, so they are left out."""
        base: dict[str, Any] = {"source": self.source, "bits": list(self.bits)}
        tensors = dict(base)
        if self.granularity:  # the granularity columns are in the rows: another choice is another file
            tensors["granularity"] = list(self.granularity)
        layers = {
            **base,  # the layer rows do not depend on the granularity
            "data": self.data,
            "seed": self.seed,
            "opt_dim": self.opt_dim,
            "layers": self.layers,
            "chunks": self.chunks,
            "calib_samples": self.calib_samples,
            "solve_time_s": self.solve_time_s,
        }
        if self.arch is not None:  # added only when set: partial files of runs without --arch stay valid
            layers["arch"] = self.arch
        return {"tensors.jsonl": tensors, "layers.jsonl": layers}


@dataclass
class CompareResult:
    """All numbers of a run. ``records``: per tensor ``name, kind, shape, numel, rows (sweep), extra``."""

    config: CompareConfig
    source: str
    notes: list[str]
    records: list[dict[str, Any]]
    options: dict[str, list[Option]]
    options_paper: dict[str, list[Option]]
    verdicts: list[TensorVerdict]
    verdicts_paper: list[TensorVerdict]
    summary: list[dict[str, Any]]
    summary_paper: list[dict[str, Any]]
    budget_bits: float
    allocation: Allocation
    baselines: list[Allocation]
    budget_curve: list[dict[str, Any]]
    layer_rows: list[dict[str, Any]] = field(default_factory=list)
    layer_verdicts: list[LayerVerdict] = field(default_factory=list)
    layers_note: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    evaluation: Any = None  # an EvalStage (pvq.compare._eval_stage) when --eval ran
    eval_note: str = ""
    granularity_summary: list[dict[str, Any]] = field(default_factory=list)  # pvq.tensors.granularity_summary
    total_params: int = 0  # every parameter of the model (embeddings, norms, biases included); 0: unknown
    deployment: Any = None  # a DeployStage (pvq.compare._deploy_stage) when --deploy ran
    deploy_note: str = ""

    def tensor_rows(self) -> list[dict[str, Any]]:
        """The sweep rows (DESIGN.md tensor keys) of every tensor, with ``kind`` and ``numel``."""
        return [
            {**r, "kind": rec["kind"], "numel": rec["numel"]} for rec in self.records for r in rec["rows"]
        ]

    def option_rows(self) -> list[dict[str, Any]]:
        return [{"name": n, **o.to_json()} for n, opts in self.options.items() for o in opts]


def _quant_snr_fn(range_search: str = "optimal") -> Callable[[torch.Tensor, Sequence[int]], dict[int, float]]:
    from pvq.tensors import sweep

    def fn(values: torch.Tensor, bits: Sequence[int]) -> dict[int, float]:
        v = values.reshape(1, -1)
        if v.numel() < 2 or float(v.abs().max()) == 0.0:
            return dict.fromkeys(bits, math.inf)
        rows = sweep({"values": v}, bits=list(bits), range_search=range_search).rows()
        return {int(r["bits"]): float(r["quant_snr_db"]) for r in rows}

    return fn


def _sweep_tensor(
    name: str, w: torch.Tensor, bits: Sequence[int], granularity: Sequence[str] = ()
) -> list[dict[str, Any]]:
    from pvq.tensors import sweep

    rows = sweep(
        {name: w}, bits=list(bits), range_search="optimal", formats=FLOAT_FORMATS, granularities=granularity
    ).rows()
    return [dict(r) for r in rows]


def module_fingerprint(model: torch.nn.Module) -> dict[str, Any]:
    """What identifies an ``nn.Module``'s numbers: its class and a BLAKE2b hash of every parameter and buffer
    (names, shapes, dtypes, values)."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return {"module": type(model).__name__, "blake2b": h.hexdigest()}


def _prepare_out(cfg: CompareConfig, folder: OutputFolder, model: torch.nn.Module | None = None) -> Path:
    """``OUT/partial``: bind each partial file to the source's content and the options that make it;
    PvqInputError if one was made from other inputs (resuming would mix two runs)."""
    from pvq._outdir import source_fingerprint

    src = source_fingerprint(cfg.source) if model is None else module_fingerprint(model)
    data = source_fingerprint(cfg.data, hash_content=False) if cfg.data is not None else None
    for fname, deps in cfg.fingerprint().items():
        if fname == "layers.jsonl" and cfg.layers == 0:
            continue  # the layer stage is skipped: its rows are neither read nor written
        key = {**deps, "source_content": src}
        if fname == "layers.jsonl":
            key["data_content"] = data
            key["rows_per_chunk"] = _layers_key_extra()
        folder.claim(f"partial/{fname}", key)
    return folder.path / "partial"


def _layers_key_extra() -> dict[str, Any]:
    from pvq.compare._layers_stage import ROWS_PER_CHUNK, SOLVERS

    return {"rows": ROWS_PER_CHUNK, "solvers": {k: list(v) for k, v in SOLVERS.items()}}


def sweep_model(ws: Any, cfg: CompareConfig, part: Path, log: Log) -> list[dict[str, Any]]:
    """Measure every tensor (resumable). Returns records in model order."""
    path = part / "tensors.jsonl"
    done = {r["name"]: r for r in read_jsonl(path) if "name" in r}
    todo = [n for n in ws if n not in done]
    if done:
        log(f"resuming: {len(done)} of {len(ws)} tensors already measured")
    qfn = _quant_snr_fn()
    for name in progress(todo, total=len(todo), desc="tensors"):
        w = ws[name]
        if w.numel() < 2 or float(w.abs().max()) == 0.0:
            continue  # nothing to compress (empty, one weight or all zero): see skipped_note
        info = ws.info(name)
        rec = {
            "name": name,
            "kind": info.kind,
            "shape": list(w.shape),
            "numel": int(w.numel()),
            "rows": _sweep_tensor(name, w, cfg.bits, cfg.granularity),
            "extra": extra_options(w, cfg.bits, qfn),
        }
        append_jsonl(path, [rec])
        done[name] = rec
    return [done[n] for n in ws if n in done]


def skipped_note(names: Sequence[str], measured: Sequence[str]) -> str | None:
    """The note for tensors left out because there is nothing to compress (empty, a single weight, all
    zero); ``pvq tensors`` and ``pvq compare`` both skip such tensors and say so."""
    left = [n for n in names if n not in set(measured)]
    if not left:
        return None
    shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
    return f"skipped {len(left)} tensor(s) with nothing to compress (empty, a single weight or all zero): {shown}"


def run_compare(
    cfg: CompareConfig,
    log: Log | None = None,
    *,
    model: torch.nn.Module | None = None,
    calibration: Sequence[Any] | None = None,
) -> CompareResult:
    """Run the whole comparison for ``cfg.source`` and return every number (no files but ``partial/``).

    ``model``: an ``nn.Module`` to compare instead of ``cfg.source`` (then only a label); with ``calibration``
    (batches the model takes: ``model(batch)``, or ``model(**batch)`` for a dict) or ``cfg.data`` the
    layer-wise stage runs on it too. Holds the lock of ``cfg.out`` while it runs (the caller may hold it too,
    to cover what it writes)."""
    from pvq._outdir import open_output

    sources = [cfg.source] if model is None else []
    with open_output(cfg.out, sources=sources) as folder:
        return _run_compare(cfg, folder, log, model, calibration)


def _run_compare(
    cfg: CompareConfig,
    folder: OutputFolder,
    log: Log | None,
    model: torch.nn.Module | None = None,
    calibration: Sequence[Any] | None = None,
) -> CompareResult:
    from pvq.models import load_weights

    log = log or (lambda _msg: None)
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    if cfg.arch is not None:
        from pvq.compare._layers_stage import bundled_name_of

        if model is not None or bundled_name_of(cfg.source) is not None:
            what = "an nn.Module" if model is not None else f"the bundled model {cfg.source}"
            raise PvqInputError(f"--arch: the source is {what}, which runs as it is; --arch is for a weights file")
    try:
        ws = load_weights(cfg.source if model is None else model)
    except PvqInputError:
        raise
    except (OSError, ValueError, RuntimeError, IndexError, KeyError, EOFError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PvqInputError(f"{cfg.source}: cannot read model ({type(exc).__name__}: {msg})") from None
    if len(ws) == 0:
        raise PvqInputError(f"{cfg.source}: no conv/linear weights found")
    notes = list(getattr(ws, "notes", []) or [])
    if cfg.data is not None:
        from pvq.compare._layers_stage import bundled_name_of
        from pvq.data import check_data_modality, image_folder
        from pvq.models import input_spec

        bundled = bundled_name_of(cfg.source)
        if bundled is not None and input_spec(bundled).modality != "image":
            raise PvqInputError(
                f"--data: {bundled} is a text model; pvq compare's --data takes images (image models)"
            )
        check_data_modality(cfg.data, "image", bundled or cfg.source)
        image_folder(cfg.data, size=224)  # fails early (PvqInputError) on a folder without images
    seconds["load"] = time.perf_counter() - t0
    part = _prepare_out(cfg, folder, model)
    for n in notes:
        log(n)

    t1 = time.perf_counter()
    stages = 1 + (cfg.layers > 0) + bool(cfg.eval)
    log(
        f"stage 1/{stages}: tensors — quantization vs pruning of each of {len(ws)} conv/linear tensors at "
        f"{','.join(map(str, cfg.bits))} bits"
    )
    records = sweep_model(ws, cfg, part, log)
    skipped = skipped_note(list(ws), [r["name"] for r in records])
    notes += [skipped] if skipped else []
    if not records:
        raise PvqInputError(f"{cfg.source}: every conv/linear weight is empty or all zero")
    seconds["tensors"] = time.perf_counter() - t1

    options = {r["name"]: options_from_rows(r["rows"], r["extra"], count_overhead=cfg.count_overhead) for r in records}
    options_paper = {r["name"]: options_from_rows(r["rows"], [], count_overhead=False) for r in records}
    sizes = {r["name"]: int(r["numel"]) for r in records}
    verdicts = tensor_verdicts(options, cfg.bits)
    verdicts_paper = tensor_verdicts(options_paper, cfg.bits)
    from pvq.tensors import granularity_summary, parse_granularities

    by_granularity = granularity_summary(
        [r for rec in records for r in rec["rows"]], parse_granularities(cfg.granularity)
    )
    # the plan is costed as pvq apply will store it (real bits); the paper's accounting keeps the sweep's bits
    costed = (
        {r["name"]: applied_costs(options[r["name"]], r["shape"]) for r in records} if cfg.count_overhead else options
    )
    try:
        budget_bits = parse_budget(cfg.budget, sum(sizes.values()))
        allocation = allocate(costed, sizes, budget_bits)
    except ValueError as exc:
        raise PvqInputError(str(exc)) from None
    baselines = [
        a
        for fam in ("quantization", "pruning")
        if (a := uniform_allocation(costed, sizes, fam, budget_bits))
    ]
    curve: list[dict[str, Any]] = []
    for b in sorted({*BUDGET_GRID, budget_bits}):
        try:
            curve.append(allocate(costed, sizes, b).summary())
        except ValueError:
            pass
        for fam in ("quantization", "pruning"):
            u = uniform_allocation(costed, sizes, fam, b)
            if u is not None and (not curve or u.avg_bits > 0):
                curve.append(u.summary())

    t2 = time.perf_counter()
    layer_rows: list[dict[str, Any]] = []
    layers_note = ""
    if cfg.layers > 0:
        from pvq.compare._layers_stage import run_layer_sample

        log(f"stage 2/{stages}: layer-wise — exact solves on {cfg.layers} sampled layers (at most {cfg.layer_time_s:g} s)")
        layer_rows, layers_note = run_layer_sample(cfg, ws, part, log, model=model, calibration=calibration)
        if not layer_rows:
            log(f"layer-wise: {layers_note}")
    else:
        layers_note = "Layer-wise comparison skipped (--layers 0)."
    seconds["layers"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    evaluation, eval_note = None, "Model-level evaluation skipped (--no-eval)."
    if cfg.eval and model is not None:
        eval_note = (
            "Model-level evaluation is not run for an nn.Module given from Python (pvq does not know its task); "
            "pvq.evaluate(model, reference, name=..., kind=...) measures one."
        )
    elif cfg.eval:
        from pvq.compare._eval_stage import run_eval_stage

        log(f"stage {stages}/{stages}: evaluation — each option applied to the whole model, quality on held-out data")
        evaluation, eval_note = run_eval_stage(cfg, allocation, folder, log)
    if evaluation is None and cfg.eval:
        log(eval_note)
    if cfg.data is not None and not layer_rows and evaluation is None:
        notes.append(
            f"--data {cfg.data} was ignored: neither the layer-wise stage nor the evaluation could run this model "
            "(see their notes)."
        )
        log(notes[-1])
    seconds["eval"] = time.perf_counter() - t3
    t4 = time.perf_counter()
    deployment, deploy_note = None, ""
    if cfg.deploy:
        from pvq.compare._deploy_stage import run_deploy_stage

        deployment, deploy_note = run_deploy_stage(cfg, folder, log)
        seconds["deploy"] = time.perf_counter() - t4
    seconds["total"] = time.perf_counter() - t0
    return CompareResult(
        config=cfg,
        source=str(getattr(ws, "source", cfg.source)),
        notes=notes,
        records=records,
        options=options,
        options_paper=options_paper,
        verdicts=verdicts,
        verdicts_paper=verdicts_paper,
        summary=bits_summary(verdicts),
        summary_paper=bits_summary(verdicts_paper),
        budget_bits=budget_bits,
        allocation=allocation,
        baselines=baselines,
        budget_curve=curve,
        layer_rows=layer_rows,
        layer_verdicts=layer_verdicts(layer_rows),
        layers_note=layers_note,
        seconds=seconds,
        evaluation=evaluation,
        eval_note=eval_note,
        granularity_summary=by_granularity,
        total_params=_total_params(cfg.source if model is None else model),
        deployment=deployment,
        deploy_note=deploy_note,
    )


def _total_params(source: Any) -> int:
    """Every parameter of the model ``source`` names (0 when it cannot be counted), for the headline's sizes."""
    from pvq.models import load_weights

    try:
        return load_weights(source, kinds=("conv", "linear", "embedding", "other")).num_params()
    except (PvqInputError, OSError, ValueError, RuntimeError):
        return 0


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=1))
