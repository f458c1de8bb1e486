"""Toolbox: the practitioner's options in the equal-size fine-tuning comparison (issue 15).

Every cell is one compression option fine-tuned from the same pretrained SmallResNet on Fashion-MNIST
for the same number of optimizer steps, at a budget of B ∈ {8, 4, 2} *real* bits per weight (overhead
counted by ``pvq.recipes.recipe_bits``: FP16 scales, zero points, the 1-bit mask of unstructured sparsity,
N:M indices). Axes:

* baseline: LSQ QAT at B bits; gradual magnitude pruning (Zhu & Gupta) to the largest integer-percent
  sparsity whose FP16 values + bitmask (with its row offsets, ``recipe_bits``) fit in B bits on a SmallResNet conv;
* criterion: one-shot pruning + fine-tuning with magnitude | SNIP | GraSP | Fisher (OBD) saliency;
* granularity: N:M (2:4, 4:8) masks kept through fine-tuning, combined with the widest LSQ grid that fits
  B (``int q`` with ``q·N/M + index bits ≤ B``, q ≤ 8);
* schedule: one-shot, gradual, iterative prune–train cycles, lottery ticket (IMP with rewinding);
* distillation: LSQ and gradual pruning with KD from the uncompressed model (logits, temperature T);
* qat: per-channel LSQ, per-channel asymmetric LSQ (LSQ+), first and last layers kept at 8 bits, mixed precision
  (per-layer widths from the measured sensitivity of the pretrained model, ``pvq.training.sensitivity_layer_bits``,
  at the real bits of uniform LSQ);
* granularity also has structured channel pruning (``pvq.deploy.structured_prune``: whole channels removed with
  torch-pruning's dependency graph, the network really shrinks) at equal parameter count: FP16 with B/16 of the
  weights kept, or int8 LSQ with B/8 kept (B < 8);
* longer (the paper's App. H / Table 5): LSQ and gradual magnitude pruning with twice the fine-tuning epochs,
  set against the paper's Table 5 vs Table 1 changes (``pvq.experiments._paper_longer``).

The cpu and gpu presets also run the baseline and channel cells on MobileNetV2 (ImageNet weights) transferred
to Fashion-MNIST (``pvq.training.transfer_setup``), in ``OUT/toolbox/mobilenet_v2``.

The learning rate of each cell is chosen on a validation split (seed 0 runs only); the other seeds are run
at that rate; test accuracy is reported as mean ± std over seeds. The test split is never used to choose.
Resumable like table1: runs are appended to ``OUT/toolbox/runs.jsonl``; a ``STOP`` file ends it early.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pvq._io import append_jsonl, read_jsonl
from pvq.experiments import ReproduceConfig, SimpleResult, register
from pvq.recipes import recipe_bits
from pvq.training._finetune import FinetuneConfig, evaluate_accuracy, example_input, resume_key
from pvq.training._lsq import compressible_layers
from pvq.training._pretrain import PretrainConfig
from pvq.training._suite import (
    FashionSetup,
    SuitePreset,
    TransferPreset,
    fashion_setup,
    lr_grid,
    run_once,
    test_selected,
    transfer_setup,
    write_json,
)

__all__ = ["ToolboxPreset", "Variant", "VARIANTS", "PRESETS", "cell_spec", "prune_percent", "nm_quant_bits"]

MODEL = "small_resnet_fmnist"


@dataclass(frozen=True)
class ToolboxPreset:
    """Sizes of one preset: the shared suite (data, pretraining, fine-tuning length, LR grid) and the
    toolbox's own knobs."""

    suite: SuitePreset
    budgets: tuple[int, ...] = (8, 4, 2)
    seeds: int = 3
    score_samples: int = 128  # examples for SNIP / GraSP / Fisher scores
    kd_alpha: float = 0.5
    kd_temperature: float = 4.0
    cycles: int = 3  # iterative prune steps / lottery rounds
    mixed_samples: int = 256  # training examples the mixed-precision sensitivity is measured on
    mixed_choices: tuple[int, ...] = (2, 3, 4, 5, 6, 8)  # LSQ widths a layer may get (or FP16)
    skip: tuple[str, ...] = ()  # variants this preset leaves out
    keep_run_folders: bool = False  # per-run checkpoints are deleted once a run is recorded
    transfer: TransferPreset | None = None  # an ImageNet CNN transferred to Fashion-MNIST, ``transfer_variants``
    transfer_variants: tuple[str, ...] = ("lsq", "prune_gradual", "channel_fp16")

    def __post_init__(self) -> None:
        if self.seeds < 1 or any(b < 2 for b in self.budgets):
            raise ValueError("toolbox preset: seeds >= 1 and budgets >= 2 bits")


@dataclass(frozen=True)
class Variant:
    """One compression option; ``family`` quant | prune | both (N:M pruning with LSQ) says which side of the
    paper's verdict it is on."""

    name: str
    axes: tuple[str, ...]
    family: str
    label: str


VARIANTS: tuple[Variant, ...] = (
    Variant("lsq", ("baseline", "distillation", "qat"), "quant", "LSQ per-tensor (paper)"),
    Variant("prune_gradual", ("baseline", "schedule", "distillation"), "prune", "gradual magnitude (paper)"),
    Variant("prune_oneshot_magnitude", ("criterion", "schedule"), "prune", "one-shot magnitude"),
    Variant("prune_oneshot_snip", ("criterion",), "prune", "one-shot SNIP"),
    Variant("prune_oneshot_grasp", ("criterion",), "prune", "one-shot GraSP"),
    Variant("prune_oneshot_fisher", ("criterion",), "prune", "one-shot Fisher/OBD"),
    Variant("nm_2:4", ("granularity",), "both", "2:4 + LSQ int q"),
    Variant("nm_4:8", ("granularity",), "both", "4:8 + LSQ int q"),
    Variant("prune_iterative", ("schedule",), "prune", "iterative prune-train cycles"),
    Variant("prune_lottery", ("schedule",), "prune", "lottery ticket (IMP + rewind)"),
    Variant("lsq_kd", ("distillation",), "quant", "LSQ + KD"),
    Variant("prune_gradual_kd", ("distillation",), "prune", "gradual magnitude + KD"),
    Variant("lsq_channel", ("qat",), "quant", "LSQ per-channel"),
    Variant("lsq_channel_asym", ("qat",), "quant", "LSQ+ per-channel asymmetric"),
    Variant("lsq_ends8", ("qat",), "quant", "LSQ, first/last layer 8 bit"),
    Variant("lsq_mixed", ("qat",), "quant", "LSQ, mixed precision from measured sensitivity"),
    Variant("channel_fp16", ("granularity",), "prune", "channel pruning (structured), FP16"),
    Variant("channel_int8", ("granularity",), "both", "channel pruning (structured) + LSQ int8"),
    Variant("lsq_2x", ("longer",), "quant", "LSQ, 2x epochs (App. H)"),
    Variant("prune_gradual_2x", ("longer",), "prune", "gradual magnitude, 2x epochs (App. H)"),
)
AXES = ("baseline", "criterion", "granularity", "schedule", "distillation", "qat", "longer")


REF_SHAPE = (32, 16, 3, 3)  # a SmallResNet conv: the default layer for the real-bits searches below


def _mean_bits(recipe: str, shapes: Sequence[tuple[int, ...]], part: Callable[[Any], float]) -> float:
    """Numel-weighted real bits of ``recipe`` over layers of ``shapes`` (``part`` picks what is counted)."""
    n = [math.prod(sh) for sh in shapes]
    return sum(part(recipe_bits(recipe, sh)) * k for sh, k in zip(shapes, n, strict=True)) / sum(n)


def prune_percent(budget: float, shapes: Sequence[tuple[int, ...]] = (REF_SHAPE,)) -> int:
    """Smallest integer sparsity (%) whose real bits (``recipe_bits``: FP16 kept values + bitmask with its row
    offsets), averaged over layers of ``shapes``, fit ``budget`` bits per weight."""
    for s in range(1, 100):
        if _mean_bits(f"prune{s}:magnitude", shapes, lambda b: b.total) <= budget + 1e-9:
            return s
    raise ValueError(f"no sparsity below 100 % fits {budget} bits per weight")


def nm_quant_bits(
    budget: float, n: int, m: int, shapes: Sequence[tuple[int, ...]] = (REF_SHAPE,)
) -> int | None:
    """Widest integer grid q ≤ 8 whose codes + N:M mask (``recipe_bits``; the per-tensor scale is negligible),
    averaged over layers of ``shapes``, fit ``budget`` (None below 2 bits)."""
    for q in range(8, 1, -1):
        if _mean_bits(f"{n}:{m}:magnitude+int{q}:tensor:rtn", shapes,
                      lambda b: b.codes + b.sparsity_metadata) <= budget + 1e-9:  # fmt: skip
            return q
    return None


def cell_spec(
    v: Variant, budget: int, p: ToolboxPreset, shapes: Sequence[tuple[int, ...]] = (REF_SHAPE,),
    epochs: int | None = None,
) -> tuple[dict[str, Any], Callable[[str, bool], str]] | None:
    """(FinetuneConfig options, recipe of a layer given (name, is first/last)) of ``v`` at ``budget``;
    None when the option has no configuration at that budget (or is the same run as another cell).
    ``epochs``: the cell's base fine-tuning length (default the preset's), doubled by the App. H cells."""
    epochs = p.suite.epochs if epochs is None else epochs
    s = prune_percent(budget, shapes)
    prune_recipe = f"prune{s}:magnitude"
    base_prune = {"method": "prune", "bits": budget, "sparsity": s / 100}
    kd = {"kd_alpha": p.kd_alpha, "kd_temperature": p.kd_temperature}
    if v.name.startswith("nm_"):
        n, m = (int(t) for t in v.name[3:].split(":"))
        q = nm_quant_bits(budget, n, m, shapes)
        if q is None:
            return None
        return ({"method": "both", "bits": q, "nm": f"{n}:{m}", "schedule": "oneshot",
                 "score_samples": p.score_samples}, lambda _l, _e: f"{n}:{m}:magnitude+int{q}:tensor:rtn")
    table: dict[str, tuple[dict[str, Any], Callable[[str, bool], str]]] = {
        "lsq": ({"method": "quant", "bits": budget}, lambda _l, _e: f"int{budget}:tensor:rtn"),
        "lsq_kd": ({"method": "quant", "bits": budget, **kd}, lambda _l, _e: f"int{budget}:tensor:rtn"),
        # widths per layer are measured on the model (``_cells``); this is the uniform fallback
        "lsq_mixed": ({"method": "quant", "bits": budget}, lambda _l, _e: f"int{budget}:tensor:rtn"),
        "lsq_channel": ({"method": "quant", "bits": budget, "per_channel": True},
                        lambda _l, _e: f"int{budget}:channel:rtn"),
        "lsq_channel_asym": ({"method": "quant", "bits": budget, "per_channel": True, "asymmetric": True},
                             lambda _l, _e: f"uint{budget}:channel:rtn"),
        "lsq_ends8": ({"method": "quant", "bits": budget, "ends_bits": 8},
                      lambda _l, end: f"int{8 if end else budget}:tensor:rtn"),
        "prune_gradual": ({**base_prune, "schedule": "gradual"}, lambda _l, _e: prune_recipe),
        "prune_gradual_kd": ({**base_prune, "schedule": "gradual", **kd}, lambda _l, _e: prune_recipe),
        "prune_iterative": ({**base_prune, "schedule": "iterative", "cycles": p.cycles}, lambda _l, _e: prune_recipe),
        "prune_lottery": ({**base_prune, "schedule": "lottery", "cycles": p.cycles}, lambda _l, _e: prune_recipe),
        # structured: equal parameter count (FP16 at B/16 of the weights; int8 at B/8), no index overhead
        "channel_fp16": ({"method": "none", "bits": 16, "channel_keep": budget / 16}, lambda _l, _e: "fp16"),
        "lsq_2x": ({"method": "quant", "bits": budget, "epochs": 2 * epochs},
                   lambda _l, _e: f"int{budget}:tensor:rtn"),
        "prune_gradual_2x": ({**base_prune, "schedule": "gradual", "epochs": 2 * epochs},
                             lambda _l, _e: prune_recipe),
    }
    if v.name == "channel_int8":
        if budget >= 8:
            return None  # int8 at 8 bits keeps every channel: the same as LSQ at 8 bits
        return {"method": "quant", "bits": 8, "channel_keep": budget / 8}, lambda _l, _e: "int8:tensor:rtn"
    for crit in ("magnitude", "snip", "grasp", "fisher"):
        table[f"prune_oneshot_{crit}"] = ({**base_prune, "schedule": "oneshot", "criterion": crit,
                                           "score_samples": p.score_samples}, lambda _l, _e: prune_recipe)
    if v.name == "lsq_ends8" and budget >= 8:
        return None  # the same run as "lsq"
    return table[v.name]


def real_bits(model: torch.nn.Module, recipe_of: Callable[[str, bool], str], nm: str | None = None,
              pruned: torch.nn.Module | None = None) -> float:
    """Real bits per weight over the compressible layers (numel-weighted ``recipe_bits``). With ``nm``,
    layers whose row length is not a multiple of M are counted with the recipe's quantization alone
    (they are left dense). With ``pruned`` (the channel-pruned ``model``) the bits of its layers are divided
    by ``model``'s weight count: bits per weight of the original network."""
    total = float(sum(mod.weight.numel() for _, mod in compressible_layers(model)))
    if pruned is not None:
        layers = compressible_layers(pruned)
        return sum(recipe_bits(recipe_of(n, i in (0, len(layers) - 1)), tuple(m.weight.shape)).total
                   * m.weight.numel() for i, (n, m) in enumerate(layers)) / total
    layers = compressible_layers(model)
    bits = 0.0
    for i, (name, mod) in enumerate(layers):
        shape = tuple(mod.weight.shape)
        r = recipe_of(name, i in (0, len(layers) - 1))
        if nm is not None and math.prod(shape[1:]) % int(nm.split(":")[1]):
            r = r.split("+", 1)[1]
        bits += recipe_bits(r, shape).total * mod.weight.numel()
    return bits / total


PRESETS: dict[str, ToolboxPreset] = {
    # smoke: every cell, one seed, one learning rate, a handful of steps (the default test suite runs it)
    "smoke": ToolboxPreset(
        suite=SuitePreset(
            pretrain=PretrainConfig(widths=(8, 16, 32), epochs=2, train_size=2048, batch_size=64, lr=0.1),
            val_size=512, val_eval=256, ft_train=256, test_size=500, epochs=1, batch_size=128,
            lr_factors=(1.0,), bn_batches=1),
        seeds=1, score_samples=16, cycles=2, mixed_samples=64, mixed_choices=(2, 4, 8)),
    # cpu: sized for <= 30 min on 2 cores shared by ~12 processes (one run ~6 s: SmallResNet 8-16-32,
    # 512 images x 3 epochs at batch 64 = 24 steps; 44 cells x (2 rates + 2 seeds) = 176 runs)
    "cpu": ToolboxPreset(
        suite=SuitePreset(
            pretrain=PretrainConfig(widths=(8, 16, 32), epochs=2, train_size=16384, batch_size=128, lr=0.1),
            val_size=5000, val_eval=500, ft_train=512, test_size=2000, epochs=3, batch_size=64,
            lr_factors=(1.0, 1 / 0.33), bn_batches=4),
        seeds=3, score_samples=128, cycles=3,
        # MobileNetV2 (ImageNet weights) transferred: 32 px, 1024 images x 2 epochs per cell, two learning rates
        transfer=TransferPreset(lr_factors=(1.0, 1 / 0.33))),
    "gpu": ToolboxPreset(
        suite=SuitePreset(
            pretrain=PretrainConfig(widths=(32, 64, 128), blocks=2, epochs=15, train_size=None, batch_size=128,
                                    lr=0.1),
            val_size=5000, val_eval=None, ft_train=None, test_size=None, epochs=20, batch_size=256,
            lr_factors=(1.0, 1 / 0.33, 0.33), bn_batches=50, threads=0),
        seeds=3, score_samples=1024, cycles=4,
        transfer=TransferPreset(size=96, transfer_train=None, transfer_epochs=3, ft_train=None, epochs=20,
                                batch_size=128, lr_factors=(1.0, 1 / 0.33, 0.33), val_eval=None, test_size=None,
                                bn_batches=50),
        transfer_variants=tuple(v.name for v in VARIANTS)),
}


def _stopped(work: Path) -> bool:
    return (work / "STOP").exists() or (work.parent / "STOP").exists()


def run_digest(fc: FinetuneConfig) -> str:
    """8 hex digits of every option of ``fc`` but its seed, learning rate and device: part of a run's key, so a
    recorded run is reused only for the very configuration it was made with (a changed sparsity grid reruns)."""
    d = {k: v for k, v in json.loads(resume_key(fc)).items() if k not in ("seed", "lr")}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]


def _cells(setup: FashionSetup, p: ToolboxPreset, epochs: int, names: Sequence[str] | None) -> list[dict]:
    shapes = [tuple(mod.weight.shape) for _, mod in compressible_layers(setup.model)]
    cells = []
    for budget in p.budgets:
        for v in VARIANTS:
            if (names is not None and v.name not in names) or v.name in p.skip:
                continue
            if v.name.startswith("channel_") and not _has_torch_pruning():
                continue
            spec = cell_spec(v, budget, p, shapes, epochs)
            if spec is None:
                continue
            cell = {"variant": v, "budget": budget, "opts": spec[0], "recipe": spec[1]}
            if v.name == "lsq_mixed":
                cell.update(_mixed_cell(setup, p, budget, spec[1]))
            cells.append(cell)
    return cells


def _mixed_cell(setup: FashionSetup, p: ToolboxPreset, budget: int,
                uniform: Callable[[str, bool], str]) -> dict[str, Any]:
    """The lsq_mixed cell's options: per-layer widths measured on ``p.mixed_samples`` training inputs, at the
    real bits of uniform LSQ at ``budget`` (so both pay the same)."""
    from pvq.training import sensitivity_layer_bits

    n = min(p.mixed_samples, len(setup.train))
    inputs = torch.stack([setup.train[i][0] for i in range(n)])
    plan = sensitivity_layer_bits(setup.model, inputs, real_bits(setup.model, uniform), p.mixed_choices, MODEL)
    widths = dict(plan.layer_bits)
    return {"opts": {"method": "quant", "bits": budget, "layer_bits": plan.layer_bits},
            "recipe": lambda name, _e: f"int{widths[name]}:tensor:rtn" if widths[name] <= 8 else "fp16",
            "mixed": {"chosen": plan.chosen, "kl": plan.value, "widths": widths}}


def _has_torch_pruning() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch_pruning") is not None


def _run_cells(setup: FashionSetup, p: ToolboxPreset, spec: SuitePreset | TransferPreset, cfg: ReproduceConfig,
               work: Path, names: Sequence[str] | None = None) -> tuple[list[dict], bool]:
    """Every (variant, budget) cell (``names``: only these variants): seed 0 at every learning rate of
    ``spec``, then the other seeds at the chosen one. Returns (one dict per cell with its runs' rows and test
    accuracies, stopped early)."""
    runs_file, test_file = work / "runs.jsonl", work / "test.jsonl"
    cells = _cells(setup, p, spec.epochs, names)

    def run(cell: dict, lr: float, seed: int) -> dict[str, Any] | None:
        if _stopped(work):
            return None
        opts = {"epochs": spec.epochs, **cell["opts"]}
        fc = FinetuneConfig(lr=lr, batch_size=spec.batch_size, weight_decay=spec.weight_decay,
                            bn_batches=spec.bn_batches, seed=cfg.seed + seed, device=cfg.device, **opts)
        key = f"{cell['variant'].name}_{cell['budget']}b_{run_digest(fc)}_lr{lr:g}_seed{seed}"
        return run_once(setup, fc, work / "runs", runs_file, resume=cfg.resume, key=key)

    tested = {r["key"]: r["test_accuracy"] for r in read_jsonl(test_file)}

    def test(row: dict[str, Any]) -> float:
        if row["key"] not in tested:
            tested[row["key"]] = test_selected(setup, row, work / "runs", cfg.device)
            append_jsonl(test_file, [{"key": row["key"], "test_accuracy": tested[row["key"]]}])
            if not p.keep_run_folders:
                shutil.rmtree(work / "runs" / row["key"], ignore_errors=True)
        return tested[row["key"]]

    grid = lr_grid(spec)
    for lr in grid:  # pass 1: seed 0 at every learning rate (a complete single-seed table after the first)
        for cell in cells:
            cell.setdefault("seed0", {})[lr] = run(cell, lr, 0)
    for cell in cells:  # choose the learning rate on validation accuracy; ties to the earlier (base) rate
        done = [(lr, r) for lr, r in cell["seed0"].items() if r is not None]
        cell["chosen"] = max(done, key=lambda t: t[1]["val_accuracy"]) if done else None
        if not p.keep_run_folders:  # the rates not chosen are never tested: drop their checkpoints
            for _, r in done:
                if r is not cell["chosen"][1]:
                    shutil.rmtree(work / "runs" / r["key"], ignore_errors=True)
    for seed in range(1, p.seeds):  # pass 2: the other seeds at the chosen rate
        for cell in cells:
            if cell["chosen"] is not None:
                cell.setdefault("seeds", {})[seed] = run(cell, cell["chosen"][0], seed)
    for cell in cells:
        cell["rows"] = []
        if cell["chosen"] is None:
            continue
        rows = [cell["chosen"][1]] + [r for r in cell.get("seeds", {}).values() if r is not None]
        cell["rows"] = rows
        cell["test"] = [test(r) for r in rows]
    return cells, _stopped(work)


def _cell_row(cell: dict, setup: FashionSetup, label: str) -> dict[str, Any]:
    v: Variant = cell["variant"]
    vals = cell.get("test", [])
    n = len(vals)
    keep = cell["opts"].get("channel_keep")
    pruned = None
    if keep is not None:  # the architecture the runs trained (deterministic in the pretrained model)
        from pvq.deploy import structured_prune

        pruned = structured_prune(setup.model, example_input(setup.train), keep, round_to=None).module
    return {
        "model": label, "variant": v.name, "label": v.label, "axes": list(v.axes), "family": v.family,
        "budget_bits": cell["budget"],
        "real_bits": real_bits(setup.model, cell["recipe"], cell["opts"].get("nm"), pruned),
        "channel_keep": keep,
        "weights_kept": None if pruned is None else sum(m.weight.numel() for _, m in compressible_layers(pruned))
        / sum(m.weight.numel() for _, m in compressible_layers(setup.model)),
        "bits": cell["opts"]["bits"], "method": cell["opts"]["method"], "metric": "accuracy", "split": "test",
        "value": statistics.fmean(vals) if n else None, "std": statistics.stdev(vals) if n >= 2 else None,
        "n_seeds": n, "values": vals, "lr": cell["chosen"][0] if cell["chosen"] else None,
        "val_accuracy": cell["chosen"][1]["val_accuracy"] if cell["chosen"] else None,
        "sparsity": statistics.fmean(r["sparsity"] for r in cell["rows"]) if cell["rows"] else None,
        "epochs": cell["rows"][0]["epochs"] if cell["rows"] else None,
        **({"mixed": cell["mixed"]} if "mixed" in cell else {}),
    }


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """One line per (axis, budget): the quantization side vs the pruning side of the paper's verdict.

    baseline: LSQ vs gradual magnitude; criterion / granularity / schedule: the axis's best pruning option
    vs plain LSQ; distillation: pruning + KD vs LSQ + KD; qat: the axis's best LSQ option vs the best
    pruning cell of the table. "ahead" needs a difference above 2 standard errors of the two means (a
    rough rule at 3 seeds, not a test).
    """
    out = []
    models = list(dict.fromkeys(r.get("model", MODEL) for r in rows))
    for model in models:
        out += _verdicts_of([r for r in rows if r.get("model", MODEL) == model],
                            "" if model == models[0] else f"{model}: ")
    return out


def _verdicts_of(rows: list[dict[str, Any]], prefix: str) -> list[str]:
    out = []
    done = [r for r in rows if r.get("value") is not None and r.get("variant") != "uncompressed"]

    def best(rs: list[dict[str, Any]]) -> dict[str, Any] | None:
        return max(rs, key=lambda r: r["value"]) if rs else None

    for axis in AXES:
        for b in sorted({r["budget_bits"] for r in done}, reverse=True):
            at = [r for r in done if r["budget_bits"] == b]
            named = {r["variant"]: r for r in at}
            on_axis = [r for r in at if axis in r["axes"]]
            if axis == "baseline":
                bq, bp = named.get("lsq"), named.get("prune_gradual")
            elif axis == "distillation":
                bq, bp = named.get("lsq_kd"), named.get("prune_gradual_kd")
            elif axis == "longer":
                bq, bp = named.get("lsq_2x"), named.get("prune_gradual_2x")
            elif axis == "qat":
                bq, bp = best([r for r in on_axis if r["family"] == "quant"]), best(
                    [r for r in at if r["family"] in ("prune", "both")])
            elif axis == "granularity":
                bq, bp = named.get("lsq"), best(on_axis)
            else:
                bq, bp = named.get("lsq"), best([r for r in on_axis if r["family"] == "prune"])
            if bq is None or bp is None:
                continue
            d = bq["value"] - bp["value"]
            se = math.sqrt(sum((r["std"] or 0.0) ** 2 / max(r["n_seeds"], 1) for r in (bp, bq)))
            if min(bq["n_seeds"], bp["n_seeds"]) < 2:
                word, spread = ("quantization ahead" if d > 0 else "pruning ahead"), "one seed: no error bar"
            else:
                word = "quantization ahead" if d > 2 * se else "pruning ahead" if -d > 2 * se else "within 2 SE"
                spread = f"2 SE {2 * se:.2f}"
            out.append(f"{prefix}{axis} @ {b} bits: {bq['variant']} {bq['value']:.2f} vs {bp['variant']} {bp['value']:.2f} "
                       f"-> {word} (diff {d:+.2f} points, {spread}, n = {bq['n_seeds']}/{bp['n_seeds']} seeds)")
    return out


def _uncompressed_row(label: str, value: float) -> dict[str, Any]:
    return {"model": label, "variant": "uncompressed", "label": "pretrained, no fine-tuning", "axes": [],
            "family": "none", "budget_bits": 32, "real_bits": 32.0, "bits": 32, "method": "none",
            "metric": "accuracy", "split": "test", "value": value, "std": None, "n_seeds": 1, "values": [value]}


def _pretrained_accuracy(setup: FashionSetup, work: Path, device: str) -> float:
    test_file = work / "test.jsonl"
    tested = {r["key"]: r["test_accuracy"] for r in read_jsonl(test_file)}
    if "pretrained" not in tested:
        tested["pretrained"] = evaluate_accuracy(setup.model, setup.test, device=device)
        append_jsonl(test_file, [{"key": "pretrained", "test_accuracy": tested["pretrained"]}])
    return tested["pretrained"]


def _run_meta(work: Path) -> list[dict[str, Any]]:
    return [{k: r[k] for k in ("key", "val_accuracy", "sparsity", "seconds", "step_seconds")}
            for r in read_jsonl(work / "runs.jsonl")]


@register("toolbox")
def toolbox(cfg: ReproduceConfig) -> SimpleResult:
    from pvq.experiments._paper_longer import longer_notes

    p = PRESETS[cfg.preset]
    s = p.suite
    if s.threads:
        torch.set_num_threads(s.threads)
    work = Path(cfg.out) / "toolbox"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    setup = fashion_setup(s, cfg.seed, cfg.device)
    write_json(work / "pretrained.json", setup.info)
    pre = _pretrained_accuracy(setup, work, cfg.device)
    cells, stopped = _run_cells(setup, p, s, cfg, work)
    rows: list[dict[str, Any]] = [_uncompressed_row(MODEL, pre)]
    rows += [_cell_row(c, setup, MODEL) for c in cells]
    t = p.transfer
    tnote = "no MobileNetV2 transfer part in this preset"
    meta: dict[str, Any] = {"preset": cfg.preset, "pretrained": setup.info, "lr_grid": lr_grid(s)}
    if t is not None and not stopped:
        tsetup = transfer_setup(t, s, cfg.seed, cfg.device)
        twork = work / t.name
        twork.mkdir(parents=True, exist_ok=True)
        label = f"{t.name}_fmnist"
        tcells, stopped = _run_cells(tsetup, p, t, cfg, twork, p.transfer_variants)
        rows.append(_uncompressed_row(label, _pretrained_accuracy(tsetup, twork, cfg.device)))
        rows += [_cell_row(c, tsetup, label) for c in tcells]
        meta["transfer"] = {"info": tsetup.info, "lr_grid": lr_grid(t), "runs": _run_meta(twork)}
        tnote = (f"{label}: torchvision-layout {t.name} with its ImageNet weights, new 10-class head, inputs resized "
                 f"to {t.size} px, whole net trained {t.transfer_epochs} epoch(s) on {t.transfer_train or 'all'} "
                 f"images (validation {tsetup.info.get('val_accuracy', float('nan')):.2f} %); cells "
                 f"{list(p.transfer_variants)}: {t.epochs} epochs on {t.ft_train or 'all'} images, batch "
                 f"{t.batch_size}, wd {t.weight_decay}, lr grid {lr_grid(t)} chosen on {t.val_eval or 'all'} "
                 f"validation images, test {t.test_size or 'all'} images")
    notes = [
        f"Model/data differ from the paper: SmallResNet (widths {s.pretrain.widths}, "
        f"{setup.info.get('num_params', '?')} params) pretrained by pvq on {s.pretrain.train_size or 'all'} "
        f"Fashion-MNIST images ({s.pretrain.epochs} epochs), not ImageNet models; {tnote}.",
        f"Every cell: {s.epochs} epoch(s) on a fixed subset of {s.ft_train or 'all'} training images, batch "
        f"{s.batch_size} (equal optimizer steps for every option, lottery rounds included; the App. H cells "
        f"lsq_2x / prune_gradual_2x run {2 * s.epochs}), SGD momentum 0.9, "
        f"wd {s.weight_decay}, cosine LR (restarted each lottery round), BN re-estimated on {s.bn_batches} batches.",
        "Budgets are real bits per weight incl. overhead (pvq.recipes.recipe_bits): unstructured pruning keeps "
        "FP16 values + a bitmask with its row offsets (sparsity: the least whole percent that fits, averaged "
        "over the model's own layers); LSQ pays FP16 scales (and zero points); N:M pays its index bits and uses "
        "the widest int grid <= 8 bits that fits; real_bits gives each cell's figure.",
        "Structured channel pruning (pvq.deploy.structured_prune, torch-pruning, L1 importance, the same channel "
        "ratio per layer, classes kept) is one-shot before fine-tuning and compared at equal parameter count: "
        "FP16 keeps at most B/16 of the conv/linear weights (no index bits: the network itself is smaller), "
        "int8 LSQ at most B/8; real_bits = bits of the smaller network per weight of the original.",
        f"Learning rate per cell chosen on {s.val_eval or s.val_size} held-out validation images from the grid "
        f"{lr_grid(s)} using the seed-0 run only; {p.seeds - 1} further seed(s) run at the chosen rate; value = "
        f"mean test accuracy on {s.test_size or 'all 10000'} test images, std = sample standard deviation over "
        "seeds (fine-tuning seeds: data order and scoring batches; one pretrained model, one data split).",
        f"Criteria scored on {p.score_samples} training examples (model in eval mode), per-tensor ranking; "
        f"one-shot pruning for the criterion axis; GraSP without its logit temperature; Fisher = empirical "
        f"Fisher from per-example gradients. Iterative: {p.cycles} prune steps over the first 75 % of steps; "
        f"lottery: {p.cycles} rounds (dense, then pruned to equal fractions of the rest), rewinding weights "
        "and optimizer state to 10 % into round 0. KD: alpha "
        f"{p.kd_alpha}, T {p.kd_temperature}, logits only.",
        "App. H: the paper doubles 20 ImageNet epochs for ResNet-50, EfficientNet-B0 and ViT; here the base "
        f"length is {s.epochs} epoch(s) on {s.ft_train or 'all'} images, so '2x' is a much shorter schedule and "
        "the per-model changes are not comparable in size, only in direction and in whether the verdict holds.",
    ]
    if not _has_torch_pruning():
        notes.append("torch-pruning is not installed (pip install 'pvq[deploy]'): no structured pruning cells.")
    notes += verdicts(rows)
    notes += longer_notes(rows)
    if stopped:
        notes.append("Run was stopped early by a STOP file: cells without results have value null.")
    meta["seconds"] = time.perf_counter() - t0
    meta["runs"] = _run_meta(work)
    return SimpleResult("toolbox", rows, notes, meta, plotter=_plot)


# ---------------------------------------------------------------- presentation


def toolbox_markdown(rows: list[dict[str, Any]]) -> str:
    """One table per model, one line per (axis, option): test accuracy mean ± std (real bits) per budget."""
    models = list(dict.fromkeys(r.get("model", MODEL) for r in rows))
    if len(models) == 1:
        return _markdown_of(rows)
    return "\n".join(f"### {m}\n\n" + _markdown_of([r for r in rows if r.get("model", MODEL) == m])
                     for m in models)


def _markdown_of(rows: list[dict[str, Any]]) -> str:
    budgets = sorted({r["budget_bits"] for r in rows if r["variant"] != "uncompressed"}, reverse=True)
    head = "| axis | option | " + " | ".join(f"{b} bits" for b in budgets) + " |"
    lines = [head, "|" + " --- |" * (2 + len(budgets))]
    base = [r for r in rows if r["variant"] == "uncompressed"]
    if base:
        lines.append(f"| - | uncompressed | {base[0]['value']:.2f} (32) |" + " |" * (len(budgets) - 1))
    for axis in AXES:
        names = list(dict.fromkeys(r["variant"] for r in rows if axis in r.get("axes", [])))
        for name in names:
            cells = []
            label = name
            for b in budgets:
                r = next((x for x in rows if x["variant"] == name and x["budget_bits"] == b), None)
                if r is None:
                    cells.append("")
                    continue
                label = r["label"]
                if r["value"] is None:
                    cells.append("not run")
                    continue
                std = f" ± {r['std']:.2f}" if r["std"] is not None else ""
                cells.append(f"{r['value']:.2f}{std} ({r['real_bits']:.2f}b, n={r['n_seeds']})")
            lines.append(f"| {axis} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(result: SimpleResult, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pvq._io import atomic_write_text
    from pvq.report._save import save_png_svg

    rows = [r for r in result.rows() if r.get("model", MODEL) == MODEL]  # the SmallResNet table
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(AXES), figsize=(3.2 * len(AXES), 3.4), sharey=True)
    for ax, axis in zip(axes, AXES, strict=True):
        for name in dict.fromkeys(r["variant"] for r in rows if axis in r.get("axes", [])):
            pts = sorted((r["real_bits"], r["value"], r["std"] or 0.0, r["family"]) for r in rows
                         if r["variant"] == name and r["value"] is not None)
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], capsize=2,
                            marker="o" if pts[0][3] == "quant" else "s", ls="-" if pts[0][3] == "quant" else "--",
                            label=name, ms=3)
        ax.set_title(axis, fontsize=9)
        ax.set_xlabel("real bits / weight")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("test accuracy (%)")
    fig.tight_layout()
    paths = list(save_png_svg(fig, out_dir, "toolbox"))
    md = out_dir / "toolbox.md"
    atomic_write_text(md, toolbox_markdown(result.rows()) + "\n" + "\n".join(f"- {n}" for n in result.notes) + "\n")
    return [*paths, md]
