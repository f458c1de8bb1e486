"""Fashion-MNIST models: pvq's SmallResNet (the reference) and its test split, for ``pvq evaluate small_resnet``.

The reference is the SmallResNet that ``pvq finetune small_resnet`` and ``pvq reproduce table1 --preset cpu``
start from: trained once on Fashion-MNIST's training split minus 5,000 validation images (seed 0) and cached
(``pvq.training.pretrain_small_resnet``; about 3 epochs of CPU time the first time). Evaluation uses the 10,000
test images, which neither training nor calibration ever sees; calibration draws from the training part.
"""

from __future__ import annotations

import os

import torch
from torch import nn

__all__ = ["SMALL_RESNET", "fashion_calibration", "fashion_test", "pretrained_small_resnet", "small_resnet_from_file"]

SMALL_RESNET = "small_resnet"
_VAL_SIZE = 5000  # pvq finetune's default --val-size: the same split, so the same cached model


def fashion_test(root: str | os.PathLike[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST's test split: images (10000, 1, 28, 28) in [0, 1] and labels (10000,)."""
    from pvq.data import fashion_mnist

    x, y = fashion_mnist("test", root=root).tensors
    return x, y


def _train_split(root: str | os.PathLike[str] | None, seed: int) -> tuple[object, object]:
    from pvq.data import fashion_mnist
    from pvq.training import train_val_split

    return train_val_split(fashion_mnist("train", root=root), _VAL_SIZE, seed=seed)


def pretrained_small_resnet(
    root: str | os.PathLike[str] | None = None, seed: int = 0, device: str = "cpu"
) -> nn.Module:
    """pvq's Fashion-MNIST SmallResNet (widths 16/32/64, 3 epochs), from the cache or trained now; eval mode.

    The configuration and data tag are those of ``pvq finetune small_resnet`` (default options), so both
    commands share one cached model."""
    from pvq.training import PretrainConfig, pretrain_small_resnet
    from pvq.training._data import dataset_len

    train_all, val = _train_split(root, seed)
    cfg = PretrainConfig(widths=(16, 32, 64), epochs=3, seed=seed)
    tag = f"fmnist:val{_VAL_SIZE}:seed{seed}:n{dataset_len(train_all)}"
    model, _info = pretrain_small_resnet(train_all, val, cfg, data_tag=tag, device=device)  # type: ignore[arg-type]
    return model.eval()


def fashion_calibration(
    n: int, batch_size: int = 32, seed: int = 0, root: str | os.PathLike[str] | None = None
) -> list[torch.Tensor]:
    """``n`` batches (batch_size, 1, 28, 28) of training images (never the test split), seeded."""
    from pvq.training import fixed_subset

    train_all, _val = _train_split(root, seed)
    sub = fixed_subset(train_all, n * batch_size, seed=seed + 7)  # type: ignore[arg-type]
    x = torch.stack([sub[i][0] for i in range(len(sub))])  # type: ignore[arg-type]
    return list(x.split(batch_size))


def small_resnet_from_file(path: str | os.PathLike[str]) -> nn.Module:
    """A SmallResNet from a state-dict file (e.g. ``pvq finetune``'s ``model_state.pt``); PvqInputError if not."""
    from pvq.models._small_resnet import small_resnet_from_file as load

    return load(path)
