"""One ``pvq compare`` run: load -> tensor sweep (+ extra options) -> layer-wise sample -> verdicts.

Resumable: every tensor's measurements are appended to ``OUT/partial/tensors.jsonl`` as soon as they
are computed, and every solved layer chunk to ``OUT/partial/layers.jsonl``; a restarted run with the
same model and bit-widths skips what is there. Library code: returns a :class:`CompareResult`, never
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

from pvq._io import append_jsonl, atomic_write_text, read_jsonl, to_jsonable
from pvq._progress import progress
from pvq.compare._budget import Allocation, allocate, parse_budget, uniform_allocation
from pvq.compare._measure import extra_options
from pvq.compare._options import Option, options_from_rows
from pvq.compare._verdict import LayerVerdict, TensorVerdict, bits_summary, layer_verdicts, tensor_verdicts
from pvq.errors import PvqInputError

__all__ = ["CompareConfig", "CompareResult", "run_compare", "BUDGET_GRID"]

FLOAT_FORMATS = ("fp8_e4m3", "fp4_e2m1", "nf4")  # reported by the sweep on the row of their bit-width
BUDGET_GRID = tuple(x / 2 for x in range(4, 17))  # 2.0 .. 8.0 bits per weight, for the budget curve
Log = Callable[[str], None]


@dataclass(frozen=True)
class CompareConfig:
    """Everything that defines a ``pvq compare`` run (saved as ``config.json``).

    ``source``: bundled model name or path; ``bits``: bit budgets (2..8); ``budget``: total size for the
    model-level recommendation (``parse_budget`` syntax: bits/weight, ``25%`` of FP16, ``1.5MB``);
    ``count_overhead``: add mask/N:M metadata to pruning's size (the headline verdict), the paper's
    mask-free accounting is always reported beside it; ``layers``/``chunks``: how many layers and chunks
    per layer the layer-wise comparison samples (0 layers: skip); ``calib_samples``: calibration inputs;
    ``solve_time_s``: time limit per exact solve; ``layer_time_s``: total time for the layer-wise stage.
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
    layer_time_s: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.bits:
            raise PvqInputError("--bits: no bit-widths given")
        for b in self.bits:
            if not (isinstance(b, int) and 2 <= b <= 8):
                raise PvqInputError(f"--bits: bit-widths must be integers in 2..8, got {b}")
        if self.layers < 0 or self.chunks < 1 or self.calib_samples < 1 or self.opt_dim < 2:
            raise PvqInputError("--layers must be >= 0, --chunks, --calib-samples >= 1, --opt-dim >= 2")
        if not (self.solve_time_s > 0 and self.layer_time_s >= 0):
            raise PvqInputError("--solve-time must be > 0 and --layer-time >= 0")

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"] = str(self.out)
        d["bits"] = list(self.bits)
        return d

    def fingerprint(self) -> dict[str, dict[str, Any]]:
        """What each partial results file depends on (a change discards that file)."""
        tensors = {"source": self.source, "bits": list(self.bits)}
        return {
            "tensors.jsonl": tensors,
            "layers.jsonl": {**tensors, "data": self.data, "seed": self.seed, "opt_dim": self.opt_dim},
        }


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


def _sweep_tensor(name: str, w: torch.Tensor, bits: Sequence[int]) -> list[dict[str, Any]]:
    from pvq.tensors import sweep

    return [
        dict(r)
        for r in sweep({name: w}, bits=list(bits), range_search="optimal", formats=FLOAT_FORMATS).rows()
    ]


def _prepare_out(cfg: CompareConfig) -> Path:
    """``OUT/partial``: keep each partial file only if it was made with the same inputs."""
    part = Path(cfg.out) / "partial"
    part.mkdir(parents=True, exist_ok=True)
    fp_path = part / "fingerprint.json"
    fp = cfg.fingerprint()
    try:
        old = json.loads(fp_path.read_text()) if fp_path.exists() else {}
    except (OSError, json.JSONDecodeError):
        old = {}
    for fname, deps in fp.items():
        if not isinstance(old, dict) or old.get(fname) != deps:
            (part / fname).unlink(missing_ok=True)
    atomic_write_text(fp_path, json.dumps(fp))
    return part


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
            continue  # nothing to compress (empty or all-zero)
        info = ws.info(name)
        rec = {
            "name": name,
            "kind": info.kind,
            "shape": list(w.shape),
            "numel": int(w.numel()),
            "rows": _sweep_tensor(name, w, cfg.bits),
            "extra": extra_options(w, cfg.bits, qfn),
        }
        append_jsonl(path, [rec])
        done[name] = rec
    return [done[n] for n in ws if n in done]


def run_compare(cfg: CompareConfig, log: Log | None = None) -> CompareResult:
    """Run the whole comparison for ``cfg.source`` and return every number (no files but ``partial/``)."""
    from pvq.models import load_weights

    log = log or (lambda _msg: None)
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    try:
        ws = load_weights(cfg.source)
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
    part = _prepare_out(cfg)

    t1 = time.perf_counter()
    records = sweep_model(ws, cfg, part, log)
    if not records:
        raise PvqInputError(f"{cfg.source}: every conv/linear weight is empty or all zero")
    seconds["tensors"] = time.perf_counter() - t1

    options = {r["name"]: options_from_rows(r["rows"], r["extra"], count_overhead=True) for r in records}
    options_paper = {r["name"]: options_from_rows(r["rows"], [], count_overhead=False) for r in records}
    sizes = {r["name"]: int(r["numel"]) for r in records}
    verdicts = tensor_verdicts(options, cfg.bits)
    verdicts_paper = tensor_verdicts(options_paper, cfg.bits)
    try:
        budget_bits = parse_budget(cfg.budget, sum(sizes.values()))
        allocation = allocate(options, sizes, budget_bits)
    except ValueError as exc:
        raise PvqInputError(str(exc)) from None
    baselines = [
        a
        for fam in ("quantization", "pruning")
        if (a := uniform_allocation(options, sizes, fam, budget_bits))
    ]
    curve: list[dict[str, Any]] = []
    for b in sorted({*BUDGET_GRID, budget_bits}):
        try:
            curve.append(allocate(options, sizes, b).summary())
        except ValueError:
            pass
        for fam in ("quantization", "pruning"):
            u = uniform_allocation(options, sizes, fam, b)
            if u is not None and (not curve or u.avg_bits > 0):
                curve.append(u.summary())

    t2 = time.perf_counter()
    layer_rows: list[dict[str, Any]] = []
    layers_note = ""
    if cfg.layers > 0:
        from pvq.compare._layers_stage import run_layer_sample

        layer_rows, layers_note = run_layer_sample(cfg, ws, part, log)
    else:
        layers_note = "Layer-wise comparison skipped (--layers 0)."
    seconds["layers"] = time.perf_counter() - t2
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
    )


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=1))
