"""Figs. 8-9 (App. I): do fine-tuned compressed models recover the original representations?

After quantization/pruning and after every fine-tuning epoch, each conv/linear layer's output on a
fixed validation batch is compared with the original model's: SNR (dB) and linear CKA.
Stand-in for the paper's ResNet-18/ViT on ImageNet: the Fashion-MNIST SmallResNet of table1.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from pvq._io import read_jsonl
from pvq.experiments import ReproduceConfig, SimpleResult, register
from pvq.experiments.table1 import PRESETS as T1
from pvq.training._data import iterate_batches
from pvq.training._finetune import FinetuneConfig
from pvq.training._lsq import compressible_layers
from pvq.training._suite import fashion_setup, run_once, test_selected

SETTINGS = {  # (bits, repr batch size) per preset; methods quant and prune at the base learning rate
    "smoke": ((4,), 64),
    "cpu": ((4, 2), 256),
    "gpu": ((8, 4, 2), 512),
}


@register("fig8")
def fig8(cfg: ReproduceConfig) -> SimpleResult:
    p = T1[cfg.preset]
    bits_list, n_batch = SETTINGS[cfg.preset]
    if p.threads:
        torch.set_num_threads(p.threads)
    work = Path(cfg.out) / "fig8"
    runs_file = work / "runs.jsonl"
    t0 = time.perf_counter()
    setup = fashion_setup(p, cfg.seed, cfg.device)
    xb, _ = next(iterate_batches(setup.val, n_batch, shuffle=False))
    layers = [n for n, _ in compressible_layers(setup.model)]
    rows: list[dict[str, Any]] = []
    summary = []
    for bits in bits_list:
        for method in ("quant", "prune"):
            fc = FinetuneConfig(method=method, bits=bits, epochs=p.epochs, lr=p.base_lr, batch_size=p.batch_size,
                                weight_decay=p.weight_decay, bn_batches=p.bn_batches, seed=cfg.seed, device=cfg.device)
            r = run_once(setup, fc, work / "runs", runs_file, resume=cfg.resume, repr_batch=xb, repr_layers=layers)
            for h in r["history"]:
                for rep in h.get("representations", []):
                    rows.append({"model": "small_resnet_fmnist", "method": method, "bits": bits, "epoch": h["epoch"],
                                 "sparsity": h["sparsity"], **rep})
            summary.append({"method": method, "bits": bits, "val_accuracy": r["val_accuracy"],
                            "test_accuracy": test_selected(setup, r, work / "runs", cfg.device)})
    notes = [
        "Model/data differ from the paper (ResNet-18 and ViT on ImageNet): the table1 SmallResNet on Fashion-MNIST, "
        f"{p.epochs} fine-tuning epochs on {p.ft_train or 'all'} images at the base learning rate {p.base_lr}.",
        f"Representations: output of every conv/linear layer on {n_batch} fixed validation images, flattened per "
        "image; epoch 0 = right after compression (pruning: the schedule's first sparsity, i.e. 0 for the "
        "gradual schedule; quantization: LSQ at its initial MSE scale). The final epoch is after BN re-estimation.",
    ]
    meta = {"preset": cfg.preset, "summary": summary, "seconds": time.perf_counter() - t0,
            "runs": [r["key"] for r in read_jsonl(runs_file)]}
    return SimpleResult("fig8", rows, notes, meta, plotter=_plot)


def _plot(result: SimpleResult, out_dir: Path) -> list[Path]:
    from pvq.report._fig_training import plot_fig8

    return plot_fig8(result.rows(), out_dir)
