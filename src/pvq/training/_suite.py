"""Equal-budget comparison suites on Fashion-MNIST (the offline stand-in for the paper's ImageNet runs).

``FashionSetup`` = data splits (train / held-out validation carved from the training split / test) +
the cached pretrained SmallResNet. ``run_once`` = one resumable fine-tuning run whose final state and
validation accuracy are stored under a run folder; ``select_by_validation`` picks a learning rate per
(method, bits, sparsity) from validation accuracy only. The test split is used only for reporting.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from pvq._io import append_jsonl, atomic_write_text, read_jsonl
from pvq.training._data import dataset_len, fixed_subset, train_val_split
from pvq.training._finetune import (
    FinetuneConfig,
    evaluate_accuracy,
    example_input,
    finetune,
    prepare_from_config,
)
from pvq.training._pretrain import PretrainConfig, pretrain_small_resnet

__all__ = ["SuitePreset", "TransferPreset", "transfer_setup", "FashionSetup", "fashion_setup", "run_once", "select_by_validation", "lr_grid",
           "test_selected"]


@dataclass(frozen=True)
class SuitePreset:
    """Sizes of one preset. ``lr_factors`` multiply ``base_lr`` (powers of 0.33, App. G), run in this order."""

    pretrain: PretrainConfig
    val_size: int = 5000  # held out from the 60k training split
    val_eval: int | None = 2000  # validation examples used to choose the learning rate
    ft_train: int | None = 4096  # fixed fine-tuning subset of the remaining training split
    test_size: int | None = None  # None: all 10k
    epochs: int = 4
    batch_size: int = 128
    base_lr: float = 0.01
    lr_factors: tuple[float, ...] = (1.0, 1 / 0.33, 0.33)
    weight_decay: float = 1e-4
    bn_batches: int = 10
    bits: tuple[int, ...] = (8, 7, 6, 5, 4, 3, 2)
    threads: int = 1


def lr_grid(p: SuitePreset) -> list[float]:
    return [float(f"{p.base_lr * f:.4g}") for f in p.lr_factors]


@dataclass
class FashionSetup:
    model: nn.Module  # pretrained, eval mode
    info: dict[str, Any]
    train: Dataset  # fine-tuning subset
    bn_train: Dataset  # the whole remaining training split (BN re-estimation draws from ft subset anyway)
    val: Dataset
    test: Dataset


def fashion_setup(p: SuitePreset, seed: int, device: str = "cpu", root: str | None = None) -> FashionSetup:
    from pvq.data import fashion_mnist

    full = fashion_mnist("train", root=root)
    train_all, val = train_val_split(full, p.val_size, seed=seed)
    pre_train = fixed_subset(train_all, p.pretrain.train_size, seed=seed + 1)
    tag = f"fmnist:val{p.val_size}:seed{seed}:n{dataset_len(pre_train)}"
    model, info = pretrain_small_resnet(pre_train, val, p.pretrain, data_tag=tag, device=device)
    test = fixed_subset(fashion_mnist("test", root=root), p.test_size, seed=seed + 2)
    return FashionSetup(
        model=model,
        info=info,
        train=fixed_subset(train_all, p.ft_train, seed=seed + 3),
        bn_train=train_all,
        val=fixed_subset(val, p.val_eval, seed=seed + 4),
        test=test,
    )


def run_key(cfg: FinetuneConfig) -> str:
    s = "" if cfg.sparsity is None else f"_s{cfg.sparsity:g}"
    return f"{cfg.method}_{cfg.bits}b{s}_lr{cfg.lr:g}"


def run_once(
    setup: FashionSetup, cfg: FinetuneConfig, work: Path, runs_file: Path, *, resume: bool = True,
    repr_batch: torch.Tensor | None = None, repr_layers: list[str] | None = None, key: str | None = None,
) -> dict[str, Any]:
    """Run (or resume, or skip if recorded in ``runs_file``) one fine-tuning; return its row.

    The row has the config, achieved sparsity, validation accuracy, timings and per-epoch history;
    the final state dict is saved as ``work/<key>/final.pt`` (``key`` defaults to ``run_key(cfg)``).
    """
    key = key or run_key(cfg)
    for row in read_jsonl(runs_file):
        if row.get("key") == key:
            return row
    folder = work / key
    epochs: list[dict[str, Any]] = []
    res = finetune(setup.model, setup.train, cfg, checkpoint_dir=folder, resume=resume, repr_batch=repr_batch,
                   repr_layers=repr_layers, on_epoch=epochs.append)
    val_acc = evaluate_accuracy(res.model, setup.val, device=cfg.device)
    torch.save({k: v.cpu() for k, v in res.model.state_dict().items()}, folder / "final.pt")
    row = {
        "key": key, "method": cfg.method, "bits": cfg.bits, "lr": cfg.lr, "epochs": cfg.epochs,
        "target_sparsity": cfg.target_sparsity, "sparsity": res.sparsity, "val_accuracy": val_acc,
        "seconds": res.seconds, "step_seconds": res.step_seconds, "history": res.history,
        "config": cfg.to_json(), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    append_jsonl(runs_file, [row])
    return row


def select_by_validation(rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Best-validation row per (method, bits, target_sparsity); ties go to the earlier (base-lr-first) run."""
    best: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        k = (r["method"], r["bits"], round(r["target_sparsity"], 6))
        if k not in best or r["val_accuracy"] > best[k]["val_accuracy"]:
            best[k] = r
    return best


def test_selected(setup: FashionSetup, row: dict[str, Any], work: Path, device: str = "cpu") -> float:
    """Test accuracy (%) of the saved final model of a run row."""
    cfg = FinetuneConfig(**row["config"])
    ex = example_input(setup.train) if cfg.channel_keep is not None else None
    model = prepare_from_config(copy.deepcopy(setup.model), cfg, ex)
    state = torch.load(work / row["key"] / "final.pt", map_location=device, weights_only=True)
    model.load_state_dict(state)
    return evaluate_accuracy(model.to(device), setup.test, device=device)


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1))


def with_lr(cfg: FinetuneConfig, lr: float) -> FinetuneConfig:
    return replace(cfg, lr=lr)


@dataclass(frozen=True)
class TransferPreset:
    """An ImageNet CNN transferred to Fashion-MNIST (new head, whole net trained ``transfer_epochs``), then
    compared like the SmallResNet. Sizes are subsets of the same train/validation/test splits."""

    name: str = "mobilenet_v2"
    size: int = 32  # input resolution the 28x28 images are resized to
    transfer_train: int | None = 4096
    transfer_epochs: int = 1
    transfer_lr: float = 0.01
    ft_train: int | None = 1024
    epochs: int = 2
    batch_size: int = 64
    base_lr: float = 0.001  # a tenth of the transfer learning rate, as 0.01 vs 0.1 for the SmallResNet
    lr_factors: tuple[float, ...] = (1.0,)
    weight_decay: float = 5e-5  # Table 4, MobileNet-V2
    bits: tuple[int, ...] = (8, 6, 4, 3, 2)
    val_eval: int | None = 1000
    test_size: int | None = 2000
    bn_batches: int = 10


def transfer_setup(t: TransferPreset, p: SuitePreset, seed: int, device: str = "cpu",
                   root: str | None = None) -> FashionSetup:
    """Like ``fashion_setup`` (same splits), with ``t.name`` transferred to Fashion-MNIST (cached)."""
    import hashlib
    from dataclasses import asdict

    from pvq.data import fashion_mnist
    from pvq.models import create_model
    from pvq.training._pretrain import cache_dir
    from pvq.training._transfer import InputAdapter, replace_classifier, transfer_train

    full = fashion_mnist("train", root=root)
    train_all, val = train_val_split(full, p.val_size, seed=seed)
    val = fixed_subset(val, t.val_eval, seed=seed + 4)
    test = fixed_subset(fashion_mnist("test", root=root), t.test_size, seed=seed + 2)
    key = hashlib.sha256(json.dumps({**asdict(t), "val": p.val_size, "seed": seed}, sort_keys=True).encode())
    path = cache_dir() / "transfer" / f"{t.name}_fmnist_{key.hexdigest()[:12]}.pt"
    ipath = path.with_suffix(".json")
    if path.exists() and ipath.exists():
        net = torch.nn.Sequential(InputAdapter(t.size), replace_classifier(create_model(t.name, pretrained=False), 10))
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net = net.to(device).eval()
        info = {**json.loads(ipath.read_text()), "cached": True}
    else:
        net, info = transfer_train(create_model(t.name, pretrained=True),
                                   fixed_subset(train_all, t.transfer_train, seed=seed + 5), val, num_classes=10,
                                   size=t.size, epochs=t.transfer_epochs, lr=t.transfer_lr,
                                   batch_size=t.batch_size, weight_decay=t.weight_decay, seed=seed, device=device)
        info = {**info, "model": t.name, "num_params": sum(q.numel() for q in net.parameters())}
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in net.state_dict().items()}, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        atomic_write_text(ipath, json.dumps(info, indent=1))
        info = {**info, "cached": False}
    return FashionSetup(model=net, info=info, train=fixed_subset(train_all, t.ft_train, seed=seed + 3),
                        bn_train=train_all, val=val, test=test)
