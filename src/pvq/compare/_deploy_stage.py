"""``pvq compare --deploy``: the compared options as deployed artifacts, and prune-or-quantize at equal latency and
at equal bytes on this machine.

Each option of ``CompareConfig.deploy_options`` (``RUNTIME/OPTION``, runtime ``onnxruntime`` when left out; the
options of :data:`pvq.deploy.OPTIONS` and any pvq recipe) is built, checked against its PyTorch counterpart,
evaluated on held-out data and timed by :func:`pvq.deploy.deploy`: real bytes of the file the runtime loads,
latency ratio to FP32 on the same runtime timed interleaved in the same run, quality (agreement / cosine) vs the
FP32 PyTorch model. :mod:`pvq.compare._deploy_verdict` turns the rows into the Pareto fronts and the two answers.

Resumable: every option's rows are appended to ``OUT/partial/deploy.jsonl`` as soon as measured (keyed on the
source's content and the timing settings, :mod:`pvq._outdir`); a rerun measures only the options it lacks (FP32
is timed again as every option's interleaved reference; its last rows stand).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvq._io import append_jsonl, read_jsonl
from pvq.compare._deploy_verdict import EqualCost, equal_cost, family_of, pareto_front, points_from_rows
from pvq.errors import PvqInputError

__all__ = [
    "DEPLOY_OPTIONS",
    "DeployStage",
    "check_deploy_options",
    "deploy_verdict_point",
    "deploy_stage",
    "run_deploy_stage",
    "split_option",
]

# The documented default set: FP32, FP16, int8 static and dynamic on ONNX Runtime, torch's dynamic int8,
# unstructured 50 % (dense kernels), structured channels to 50 % of the weights, and 2:4 on a GPU (a skipped
# row with the reason where there is none).
DEPLOY_OPTIONS = (
    "fp32",
    "fp16",
    "int8-static",
    "int8-dynamic",
    "prune50:magnitude",
    "channels50",
    "torch/fp32",
    "torch/int8-dynamic",
    "torch/2:4-gpu",
)
DEPLOY_BATCHES = (1, 32)
Log = Callable[[str], None]


def split_option(text: str) -> tuple[str, str]:
    """``"torch/int8-dynamic"`` -> ``("torch", "int8-dynamic")``; no prefix -> ``onnxruntime``."""
    from pvq.deploy import RUNTIMES

    rt, sep, name = text.strip().partition("/")
    if not sep:
        return "onnxruntime", rt
    if rt not in RUNTIMES:
        raise PvqInputError(f"--deploy-options {text}: runtime must be one of {', '.join(RUNTIMES)}")
    return rt, name


def check_deploy_options(options: Sequence[str]) -> None:
    """PvqInputError naming the first option that is not a deploy option (checked before any work)."""
    from pvq.deploy import parse_option

    if not options:
        raise PvqInputError("--deploy-options: no options given")
    for o in options:
        _, name = split_option(o)
        try:
            parse_option(name)
        except PvqInputError as exc:
            raise PvqInputError(f"--deploy-options: {exc}") from None


@dataclass
class DeployStage:
    """Everything ``--deploy`` measured. ``rows``: deploy rows (JSON), every runtime and batch; ``answers``:
    equal-latency (per runtime) and equal-bytes answers per batch size."""

    model: str
    kind: str
    metric: str
    batches: tuple[int, ...]
    rows: list[dict[str, Any]]
    answers: list[EqualCost]
    machine: str
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fronts(self) -> dict[str, dict[int, list[str]]]:
        """``{"latency": {batch: [option...]}, "bytes": {...}}``: the options on each Pareto front (latency:
        ONNX Runtime only, whose ratios share one FP32 reference)."""
        out: dict[str, dict[int, list[str]]] = {"latency": {}, "bytes": {}}
        for b in self.batches:
            pts = points_from_rows(self.rows, b)
            ort = [p for p in pts if p.option.startswith("onnxruntime/")]
            out["latency"][b] = [p.option for p in pareto_front(ort, "latency")]
            out["bytes"][b] = [p.option for p in pareto_front(pts, "bytes")]
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per measured option: bytes, latency ratio per batch, quality and its interval, the check."""
        by: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self.rows:
            key = (r["runtime"], r["recipe"])
            d = by.setdefault(
                key,
                {
                    "runtime": r["runtime"],
                    "option": r["recipe"],
                    "family": family_of(r["recipe"]),
                    "status": r.get("status", "ok"),
                    "mb": None if r.get("bytes") is None else r["bytes"] / 1e6,
                    "checkpoint_mb": None
                    if r.get("checkpoint_bytes") is None
                    else r["checkpoint_bytes"] / 1e6,
                    "value": r.get("value"),
                    "ci_low": r.get("ci_low"),
                    "ci_high": r.get("ci_high"),
                    "n": r.get("n"),
                    "check_max_abs": r.get("check_max_abs"),
                    "peak_mb": r.get("peak_mb"),
                    "note": r.get("note", ""),
                },
            )
            d[f"ratio_b{r['batch']}"] = r.get("latency_ratio")
            d[f"ms_b{r['batch']}"] = r.get("latency_ms")
        return list(by.values())

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "kind": self.kind,
            "metric": self.metric,
            "batches": list(self.batches),
            "machine": self.machine,
            "answers": [a.to_json() for a in self.answers],
            "pareto": {axis: {str(b): v for b, v in d.items()} for axis, d in self.fronts().items()},
            "options": self.table(),
            "notes": self.notes,
            "seconds": self.seconds,
        }


def deploy_verdict_point(stage: DeployStage) -> str:
    """One sentence for the compare verdict: the ONNX Runtime equal-latency and the equal-bytes answers at the
    largest batch, and that they hold for this machine only."""
    b = max(stage.batches)
    lat = next((a for a in stage.answers if a.axis == "latency" and a.batch == b and a.text.startswith("onnxruntime")), None)
    byt = next((a for a in stage.answers if a.axis == "bytes" and a.batch == b), None)
    words = {
        "quantization": "**quantization** wins",
        "pruning": "**pruning** wins",
        "depends": "the winner depends on the budget",
        "tie": "no family wins clearly",
        "n/a": "one family has no measured option",
    }
    parts = [f"at equal {what}, {words[a.answer]}" for what, a in (("latency", lat), ("bytes on disk", byt)) if a]
    if not parts:
        return "Deployed: no compressed option was measured."
    return (
        f"Deployed (ONNX Runtime, batch {b}, {stage.metric} on held-out data): " + "; ".join(parts)
        + " (see the deployment section). Measured on this machine only: other hardware can answer otherwise."
    )


def _machine() -> str:
    import os

    try:
        import onnxruntime as ort

        ort_v = f"onnxruntime {ort.__version__}"
    except ImportError:
        ort_v = "no onnxruntime"
    import torch

    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, {ort_v}, 1 thread"


def _latest(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The last row per (runtime, option, batch): a rerun's FP32 replaces the earlier one."""
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for r in rows:
        out[(r["runtime"], r["recipe"], int(r["batch"]))] = dict(r)
    return out


def deploy_stage(
    model: Any,
    *,
    name: str,
    kind: str,
    options: Sequence[str] = DEPLOY_OPTIONS,
    batches: Sequence[int] = DEPLOY_BATCHES,
    repeats: int = 5,
    warmup: int = 1,
    seed: int = 0,
    cache: Path | None = None,
    measure_memory: bool = True,
    log: Log | None = None,
) -> DeployStage:
    """Measure ``options`` of ``model`` (a bundled model's ``name``: its evaluation and calibration data) on
    their runtimes and answer prune-or-quantize at equal latency and bytes. ``cache``: a JSONL file of rows read
    first and appended to (the caller binds it to the inputs)."""
    from pvq.deploy import DeployConfig, deploy

    say = log or (lambda _m: None)
    t0 = time.perf_counter()
    check_deploy_options(options)
    batches = tuple(sorted(set(batches)))
    wanted: dict[str, list[str]] = {}
    for o in options:
        rt, opt = split_option(o)
        wanted.setdefault(rt, [])
        if opt not in wanted[rt]:
            wanted[rt].append(opt)
    have = _latest(read_jsonl(cache) if cache is not None else [])
    metric = {"image": "agreement", "encoder": "cosine"}.get(kind, "quality")
    for rt, opts in wanted.items():
        todo = [o for o in opts if not all((rt, o, b) in have for b in batches)]
        if not todo:
            continue
        if len(todo) < len(opts):
            say(f"deploy {rt}: resuming, {len(opts) - len(todo)} of {len(opts)} option(s) already measured")

        def keep(rows: list[Any], rt: str = rt) -> None:
            js = [r.to_json() for r in rows]
            if cache is not None:
                append_jsonl(cache, js)
            have.update(_latest(js))

        cfg = DeployConfig(
            batches=batches,
            runtime=rt,
            threads=1,
            warmup=warmup,
            repeats=repeats,
            seed=seed,
            measure_memory=measure_memory,
        )
        deploy(model, name, todo, cfg, kind=kind, progress=lambda m: say(f"deploy: {m}"), on_rows=keep)
    rows = [
        have[(rt, o, b)]
        for rt, opts in wanted.items()
        for o in ["fp32", *opts]
        for b in batches
        if (rt, o, b) in have
    ]
    rows = list({(r["runtime"], r["recipe"], r["batch"]): r for r in rows}.values())  # fp32 once per runtime
    answers: list[EqualCost] = []
    for b in batches:
        pts = points_from_rows(rows, b)
        for rt in wanted:
            on_rt = [p for p in pts if p.option.startswith(rt + "/")]
            if any(p.family != "reference" for p in on_rt):
                a = equal_cost(on_rt, "latency", b, metric)
                answers.append(EqualCost(a.axis, a.batch, a.answer, a.steps, f"{rt}: {a.text}"))
        answers.append(equal_cost(pts, "bytes", b, metric))
    notes = [
        "Latency ratios divide by FP32 on the same runtime, timed call for call interleaved with the option in the "
        "same run (1 thread); equal-latency answers therefore compare options of one runtime. On a shared machine "
        "ratios within about 15 % of each other are noise.",
        "The answers hold for this machine and these runtimes only: which method is faster is hardware- and "
        "kernel-specific (no sparse kernels here: unstructured sparsity runs dense; int8 speed depends on the "
        "CPU's integer instructions; 2:4 needs a GPU).",
        "Bytes are those of the file the runtime loads (ONNX, or safetensors/pickle on torch). A pvq recipe "
        "(prune50:magnitude...) runs with dense kernels from a dense FP32 file; its compressed-tensors checkpoint "
        "is listed beside it (compressed ckpt MB) but is not what the runtime loads, so it does not count as its "
        "bytes in the equal-bytes answer.",
        f"Quality: {metric} against the FP32 PyTorch model on held-out data, with its 95 % interval; no "
        "fine-tuning after compression.",
    ]
    return DeployStage(
        name, kind, metric, batches, rows, answers, _machine(), notes, time.perf_counter() - t0
    )


def run_deploy_stage(cfg: Any, folder: Any, log: Log) -> tuple[DeployStage | None, str]:
    """The ``--deploy`` stage of ``pvq compare`` for ``cfg.source``: (stage, note); ``None`` with a note saying
    why when the source cannot be deployed (not a bundled model, or a causal LM)."""
    from pvq._outdir import source_fingerprint
    from pvq.compare._layers_stage import bundled_name_of

    name = bundled_name_of(cfg.source)
    if name is None:
        return None, (
            "No deployment measurements: --deploy measures bundled models (their evaluation data); for your own "
            "module use pvq.deploy.deploy(model, name, options, kind=...) from Python"
        )
    from pvq.evaluate import kind_of

    kind = kind_of(name)
    if kind == "lm":
        return None, (
            f"No deployment measurements for {name}: compare --deploy ranks options by a higher-is-better "
            "agreement (image and text-encoder models); measure the causal LM with `pvq deploy smollm2` (fp32, fp16, "
            "int8-dynamic; no KV cache, perplexity on held-out text)"
        )
    from pvq.models import create_model

    key = {
        "source": cfg.source,
        "source_content": source_fingerprint(cfg.source),
        "batches": sorted(set(cfg.deploy_batches)),
        "repeats": cfg.deploy_repeats,
        "seed": cfg.seed,
        "threads": 1,
        "machine": _machine(),
    }
    folder.claim("partial/deploy.jsonl", key)
    stage = deploy_stage(
        create_model(name),
        name=name,
        kind=kind,
        options=cfg.deploy_options,
        batches=cfg.deploy_batches,
        repeats=cfg.deploy_repeats,
        seed=cfg.seed,
        cache=folder.path / "partial" / "deploy.jsonl",
        log=log,
    )
    return stage, ""
