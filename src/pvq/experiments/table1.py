"""Table 1: LSQ QAT vs gradual magnitude pruning after equal fine-tuning, at equal model size (8…2 bits).

Offline stand-in for the paper's ImageNet models: a small ResNet pretrained by pvq on Fashion-MNIST
(cached), then for every b: QAT at b bits vs pruning to sparsity 1 − b/16, the same epochs, a learning
rate per (method, b) chosen on a validation split held out from the training data, test accuracy reported.
Resumable: runs are appended to ``OUT/table1/runs.jsonl`` as they finish; a run interrupted mid-way
restarts from its last epoch checkpoint. A file ``OUT/table1/STOP`` makes it finish with the runs done.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from pvq._io import append_jsonl, read_jsonl
from pvq.experiments import ReproduceConfig, SimpleResult, register
from pvq.training._finetune import FinetuneConfig, evaluate_accuracy
from pvq.training._pretrain import PretrainConfig
from pvq.training._suite import (
    FashionSetup,
    SuitePreset,
    TransferPreset,
    fashion_setup,
    lr_grid,
    run_once,
    select_by_validation,
    test_selected,
    transfer_setup,
    write_json,
)

MODEL = "small_resnet_fmnist"

PRESETS: dict[str, SuitePreset] = {
    "smoke": SuitePreset(
        pretrain=PretrainConfig(widths=(8, 16, 32), epochs=2, train_size=2048, batch_size=64, lr=0.1),
        val_size=512, val_eval=512, ft_train=512, test_size=1000, epochs=2, batch_size=128,
        lr_factors=(1.0, 0.33), bn_batches=2, bits=(4, 2),
    ),
    # cpu: the grid was extended upwards (0.33^-2, then 0.33^-3) after the first passes because pruning's
    # validation-selected rate sat at the top of the grid; every added rate runs for both methods.
    "cpu": SuitePreset(
        pretrain=PretrainConfig(widths=(16, 32, 64), epochs=3, train_size=None, batch_size=128, lr=0.1),
        val_size=5000, val_eval=2000, ft_train=2048, test_size=None, epochs=4, batch_size=128,
        lr_factors=(1.0, 1 / 0.33, 0.33, 1 / 0.33**2, 1 / 0.33**3), bn_batches=10, bits=(8, 7, 6, 5, 4, 3, 2),
    ),
    "gpu": SuitePreset(
        pretrain=PretrainConfig(widths=(32, 64, 128), blocks=2, epochs=15, train_size=None, batch_size=128, lr=0.1),
        val_size=5000, val_eval=None, ft_train=None, test_size=None, epochs=20, batch_size=256,
        lr_factors=(1.0, 1 / 0.33, 0.33, 1 / 0.33**2, 0.33**2), bn_batches=50, bits=(8, 7, 6, 5, 4, 3, 2),
        threads=0,
    ),
}


def table_rows(best: dict[tuple, dict[str, Any]], tested: dict[str, float], model: str) -> list[dict[str, Any]]:
    rows = []
    for (method, bits, _), r in sorted(best.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        if r["key"] not in tested:
            continue
        rows.append({
            "model": model, "method": method, "bits": bits, "sparsity": r["sparsity"], "epochs": r["epochs"],
            "metric": "accuracy", "value": tested[r["key"]], "split": "test", "lr": r["lr"],
            "val_accuracy": r["val_accuracy"], "target_sparsity": r["target_sparsity"],
        })
    return rows


TRANSFER: dict[str, TransferPreset | None] = {
    "smoke": None,
    # MobileNetV2, reduced: 32 px, 1024 images x 2 epochs, bits 8,6,4,3,2; lr grid base 0.001 x 0.33^(0,-1,1,-2,-3)
    "cpu": TransferPreset(lr_factors=(1.0, 1 / 0.33, 0.33, 1 / 0.33**2, 1 / 0.33**3)),
    "gpu": TransferPreset(size=96, transfer_train=None, transfer_epochs=3, ft_train=None, epochs=20,
                          batch_size=128, lr_factors=(1.0, 1 / 0.33, 0.33), bits=(8, 7, 6, 5, 4, 3, 2),
                          val_eval=None, test_size=None, bn_batches=50),
}


def _compare(setup: FashionSetup, spec: SuitePreset | TransferPreset, cfg: ReproduceConfig, work: Path,
             model: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """QAT vs pruning for every bit-width and learning rate of ``spec``; returns (rows, runs, stopped)."""
    runs_file, test_file = work / "runs.jsonl", work / "test.jsonl"
    tested = {r["key"]: r["test_accuracy"] for r in read_jsonl(test_file)}
    if "pretrained" not in tested:
        tested["pretrained"] = evaluate_accuracy(setup.model, setup.test, device=cfg.device)
        append_jsonl(test_file, [{"key": "pretrained", "test_accuracy": tested["pretrained"]}])
    grid = lr_grid(spec)
    stopped = False
    for lr in grid:  # one pass per learning rate: a complete table exists after the first pass
        for bits in spec.bits:
            for method in ("quant", "prune"):
                if (work.parent / "STOP").exists() or (work / "STOP").exists():
                    stopped = True
                    break
                fc = FinetuneConfig(method=method, bits=bits, epochs=spec.epochs, lr=lr, batch_size=spec.batch_size,
                                    weight_decay=spec.weight_decay, bn_batches=spec.bn_batches, seed=cfg.seed,
                                    device=cfg.device)
                run_once(setup, fc, work / "runs", runs_file, resume=cfg.resume)
    runs = [r for r in read_jsonl(runs_file) if r["lr"] in grid and r["epochs"] == spec.epochs]
    best = select_by_validation(runs)
    for r in best.values():
        if r["key"] not in tested:
            tested[r["key"]] = test_selected(setup, r, work / "runs", cfg.device)
            append_jsonl(test_file, [{"key": r["key"], "test_accuracy": tested[r["key"]]}])
    rows = [{"model": model, "method": "none", "bits": 32, "sparsity": 0.0, "epochs": 0, "metric": "accuracy",
             "value": tested["pretrained"], "split": "test"}]
    rows += table_rows(best, tested, model)
    return rows, runs, stopped


@register("table1")
def table1(cfg: ReproduceConfig) -> SimpleResult:
    p = PRESETS[cfg.preset]
    if p.threads:
        torch.set_num_threads(p.threads)
    work = Path(cfg.out) / "table1"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    setup = fashion_setup(p, cfg.seed, cfg.device)
    write_json(work / "pretrained.json", setup.info)
    rows, runs, stopped = _compare(setup, p, cfg, work, MODEL)
    grid = lr_grid(p)
    lrs_done = sorted({r["lr"] for r in runs})
    notes = [
        "Model/data differ from the paper: a SmallResNet "
        f"(widths {p.pretrain.widths}, {p.pretrain.blocks} block/stage, "
        f"{setup.info.get('num_params', '?')} params) pretrained by pvq on Fashion-MNIST "
        f"({p.pretrain.epochs} epochs), not ImageNet ResNet-18/50, MobileNet, EfficientNet, ViT.",
        f"Fine-tuning: {p.epochs} epochs on a fixed subset of {p.ft_train or 'all'} training images "
        f"(paper: 20 epochs on all of ImageNet), batch {p.batch_size}, SGD momentum 0.9, wd {p.weight_decay}, "
        "cosine LR decay; LSQ scales by Adam 1e-5; pruning ramps sparsity (cubic, per step) over the first 75 % "
        "of steps to 1 - b/16 per tensor, all conv/linear layers incl. first and last; BN re-estimated "
        f"on {p.bn_batches} training batches after training.",
        f"Learning rate per (method, bits) chosen on {p.val_eval or p.val_size} validation images held out "
        f"from the training split, from the grid {grid} (base {p.base_lr} x powers of 0.33); "
        f"learning rates actually completed: {lrs_done}.",
        "LSQ scale initialisation: dense MSE grid search with refinement (pvq.training.mse_scale), "
        "not pvq.tensors' exact search.",
        "Uncompressed row ('none', bits 32) is the pretrained model's test accuracy without fine-tuning.",
    ]
    meta: dict[str, Any] = {"preset": cfg.preset, "pretrained": setup.info, "lr_grid": grid,
                            "runs": [{k: r[k] for k in ("key", "val_accuracy", "sparsity", "seconds", "step_seconds")}
                                     for r in runs]}
    t = TRANSFER[cfg.preset]
    if t is not None and not stopped and not (work / "NO_TRANSFER").exists():
        tsetup = transfer_setup(t, p, cfg.seed, cfg.device)
        label = f"{t.name}_fmnist"
        trows, truns, tstopped = _compare(tsetup, t, cfg, work / t.name, label)
        rows += trows
        stopped = stopped or tstopped
        meta["transfer"] = {"info": tsetup.info, "lr_grid": lr_grid(t), "runs": [
            {k: r[k] for k in ("key", "val_accuracy", "sparsity", "seconds", "step_seconds")} for r in truns]}
        notes.append(
            f"{label}: torchvision-layout {t.name} with its ImageNet weights, new 10-class head, inputs resized to "
            f"{t.size} px (3 channels, ImageNet normalisation), whole net trained {t.transfer_epochs} epoch(s) on "
            f"{t.transfer_train or 'all'} images; then {t.epochs} epochs of compression fine-tuning on "
            f"{t.ft_train or 'all'} images, bits {list(t.bits)}, lr grid {lr_grid(t)}, batch {t.batch_size}, "
            f"validation {t.val_eval or 'all'} / test {t.test_size or 'all'} images. Reduced for CPU time.")
    elif t is None:
        notes.append("No ImageNet-CNN transfer part in this preset.")
    if stopped:
        notes.append("Run was stopped early by a STOP file: only the learning rates listed were completed.")
    meta["seconds"] = time.perf_counter() - t0
    return SimpleResult("table1", rows, notes, meta, plotter=_plot)


def _plot(result: SimpleResult, out_dir: Path) -> list[Path]:
    from pvq.report._fig_training import plot_table1

    return plot_table1(result.rows(), out_dir)
