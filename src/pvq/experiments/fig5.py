"""Fig. 5: pruning quantized models. Accuracy vs average bits = bits × density (natural zeros included).

For each base bit-width b, LSQ QAT at b bits combined with gradual magnitude pruning at several
ratios (masks first, then quantization of the surviving weights); ratio 0 = quantization alone, whose
only zeros are the natural ones (the paper's crosses). No mask overhead is counted, as in the paper.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from pvq._io import append_jsonl, read_jsonl
from pvq.experiments import ReproduceConfig, SimpleResult, register
from pvq.experiments.table1 import PRESETS as T1
from pvq.training._finetune import FinetuneConfig
from pvq.training._suite import fashion_setup, run_once, test_selected

SETTINGS = {  # base bits, extra pruning ratios
    "smoke": ((4,), (0.0, 0.5)),
    "cpu": ((4, 3), (0.0, 0.25, 0.5)),
    "gpu": ((8, 6, 4, 3), (0.0, 0.1, 0.25, 0.4, 0.5, 0.75)),
}


@register("fig5")
def fig5(cfg: ReproduceConfig) -> SimpleResult:
    p = T1[cfg.preset]
    bits_list, ratios = SETTINGS[cfg.preset]
    if p.threads:
        torch.set_num_threads(p.threads)
    work = Path(cfg.out) / "fig5"
    runs_file, test_file = work / "runs.jsonl", work / "test.jsonl"
    t0 = time.perf_counter()
    setup = fashion_setup(p, cfg.seed, cfg.device)
    tested = {r["key"]: r["test_accuracy"] for r in read_jsonl(test_file)}
    rows: list[dict[str, Any]] = []
    for bits in bits_list:
        for ratio in ratios:
            method = "quant" if ratio == 0 else "both"
            fc = FinetuneConfig(method=method, bits=bits, epochs=p.epochs, lr=p.base_lr, batch_size=p.batch_size,
                                weight_decay=p.weight_decay, bn_batches=p.bn_batches, seed=cfg.seed,
                                device=cfg.device, sparsity=None if ratio == 0 else ratio)
            r = run_once(setup, fc, work / "runs", runs_file, resume=cfg.resume)
            if r["key"] not in tested:
                tested[r["key"]] = test_selected(setup, r, work / "runs", cfg.device)
                append_jsonl(test_file, [{"key": r["key"], "test_accuracy": tested[r["key"]]}])
            rows.append({"model": "small_resnet_fmnist", "method": method, "bits": bits, "prune_ratio": ratio,
                         "sparsity": r["sparsity"], "avg_bits": bits * (1.0 - r["sparsity"]), "epochs": p.epochs,
                         "metric": "accuracy", "value": tested[r["key"]], "split": "test",
                         "val_accuracy": r["val_accuracy"]})
    notes = [
        "Model/data differ from the paper (ResNet-18, MobileNet-V2, ViT on ImageNet): the table1 SmallResNet on "
        f"Fashion-MNIST, {p.epochs} epochs on {p.ft_train or 'all'} images, base learning rate {p.base_lr} "
        "(no per-point learning-rate search).",
        "avg_bits = bits x (1 - sparsity), sparsity = measured fraction of zero weights over all conv/linear "
        "layers after fine-tuning, including the natural zeros of quantization; no mask overhead.",
    ]
    meta = {"preset": cfg.preset, "seconds": time.perf_counter() - t0}
    return SimpleResult("fig5", rows, notes, meta, plotter=_plot)


def _plot(result: SimpleResult, out_dir: Path) -> list[Path]:
    from pvq.report._fig_training import plot_fig5

    return plot_fig5(result.rows(), out_dir)
