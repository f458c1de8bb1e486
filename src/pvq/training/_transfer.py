"""Transfer an ImageNet CNN to a small image dataset (e.g. Fashion-MNIST) as a fine-tuning starting point.

``InputAdapter`` maps (B, C, H, W) images in [0, 1] to the network's input (3 channels, ``size``²,
ImageNet-normalised); the last ``nn.Linear`` is replaced by a fresh one for ``num_classes``; the whole
network is then fine-tuned for a few epochs. The adapter has no weights, so compression never touches it.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from pvq._progress import progress
from pvq.training._data import dataset_len, iterate_batches
from pvq.training._finetune import evaluate_accuracy

__all__ = ["InputAdapter", "replace_classifier", "transfer_train"]

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class InputAdapter(nn.Module):
    """(B, 1 or 3, H, W) in [0, 1] -> (B, 3, size, size) ImageNet-normalised (bilinear resize)."""

    def __init__(self, size: int, normalize: bool = True) -> None:
        super().__init__()
        self.size = int(size)
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std if self.normalize else x


def replace_classifier(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the last ``nn.Linear`` of ``model`` (in place) by a new one with ``num_classes`` outputs."""
    last = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            last = name
    if last is None:
        raise ValueError("model has no nn.Linear classifier to replace")
    parent_name, _, attr = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, attr)
    setattr(parent, attr, nn.Linear(old.in_features, num_classes))
    return model


def transfer_train(
    model: nn.Module, train: Dataset, val: Dataset, *, num_classes: int, size: int, epochs: int = 1,
    lr: float = 0.01, batch_size: int = 64, weight_decay: float = 5e-5, seed: int = 0, device: str = "cpu",
) -> tuple[nn.Module, dict[str, Any]]:
    """``nn.Sequential(InputAdapter(size), model with a new head)`` fine-tuned on ``train`` (SGD, cosine)."""
    torch.manual_seed(seed)
    net = nn.Sequential(InputAdapter(size), replace_classifier(copy.deepcopy(model), num_classes)).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps = math.ceil(dataset_len(train) / batch_size)
    total, step, t0 = max(1, steps * epochs), 0, time.perf_counter()
    for epoch in range(epochs):
        net.train()
        for xb, yb in progress(iterate_batches(train, batch_size, shuffle=True, seed=seed * 7919 + epoch),
                               total=steps, desc=f"transfer epoch {epoch + 1}/{epochs}"):
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = nn.functional.cross_entropy(net(xb.to(device)), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    net.eval()
    info = {"val_accuracy": evaluate_accuracy(net, val, batch_size=128, device=device),
            "train_seconds": time.perf_counter() - t0, "epochs": epochs, "size": size}
    return net, info
