"""The pretrained starting point of the CPU experiments: a SmallResNet trained by pvq on Fashion-MNIST.

Trained once per configuration and cached (state dict + JSON with its accuracies) under the cache
folder (``$PVQ_CACHE`` or ``~/.cache/pvq``), keyed by a hash of the configuration.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from pvq._io import atomic_write_text
from pvq._progress import progress
from pvq.models._small_resnet import SmallResNet
from pvq.training._data import dataset_len, iterate_batches
from pvq.training._finetune import evaluate_accuracy

__all__ = ["PretrainConfig", "pretrain_small_resnet", "cache_dir"]


def cache_dir() -> Path:
    return Path(os.environ.get("PVQ_CACHE", Path.home() / ".cache" / "pvq"))


@dataclass(frozen=True)
class PretrainConfig:
    widths: tuple[int, ...] = (16, 32, 64)
    blocks: int = 1
    epochs: int = 3
    lr: float = 0.1  # SGD momentum 0.9, cosine decay per step
    batch_size: int = 128
    weight_decay: float = 5e-4
    train_size: int | None = None  # None: the whole training split given
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError("pretrain: epochs and batch_size must be >= 1 and lr > 0")

    def key(self, data_tag: str) -> str:
        blob = json.dumps({**asdict(self), "data": data_tag}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def pretrain_small_resnet(
    train: Dataset, val: Dataset, cfg: PretrainConfig, *, data_tag: str, cache: Path | None = None,
    device: str = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """Train (or load from the cache) a SmallResNet; returns (model in eval mode, info with ``val_accuracy``).

    ``data_tag`` names the data (split sizes and seeds) so a different split never reuses a cache entry.
    """
    folder = (cache or cache_dir()) / "small_resnet"
    key = cfg.key(data_tag)
    wpath, ipath = folder / f"fmnist_{key}.pt", folder / f"fmnist_{key}.json"
    model = SmallResNet(cfg.widths, cfg.blocks)
    if wpath.exists() and ipath.exists():
        model.load_state_dict(torch.load(wpath, map_location="cpu", weights_only=True))
        return model.to(device).eval(), {**json.loads(ipath.read_text()), "cached": True, "path": str(wpath)}
    torch.manual_seed(cfg.seed)
    model = SmallResNet(cfg.widths, cfg.blocks).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
    steps = math.ceil(dataset_len(train) / cfg.batch_size)
    total, step = steps * cfg.epochs, 0
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        batches = iterate_batches(train, cfg.batch_size, shuffle=True, seed=cfg.seed * 1009 + epoch)
        for xb, yb in progress(batches, total=steps, desc=f"pretrain epoch {epoch + 1}/{cfg.epochs}"):
            for g in opt.param_groups:
                g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = nn.functional.cross_entropy(model(xb.to(device)), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    model.eval()
    info = {
        "config": asdict(cfg),
        "data": data_tag,
        "val_accuracy": evaluate_accuracy(model, val, device=device),
        "train_seconds": time.perf_counter() - t0,
        "num_params": sum(p.numel() for p in model.parameters()),
    }
    folder.mkdir(parents=True, exist_ok=True)
    tmp = wpath.with_suffix(".tmp")
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
    tmp.replace(wpath)
    atomic_write_text(ipath, json.dumps(info, indent=1))
    return model, {**info, "cached": False, "path": str(wpath)}
