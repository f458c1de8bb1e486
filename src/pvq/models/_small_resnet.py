"""A small CIFAR-style ResNet for 28x28 grayscale images (Fashion-MNIST): the CPU stand-in for ResNet-18.

Layout (He et al. 2016, the CIFAR variant): a 3x3 stem conv, three stages of ``blocks`` BasicBlocks
with ``widths`` channels (stride 2 between stages, 1x1 conv shortcuts where the shape changes),
global average pooling and one linear classifier. Batch norm after every conv, as in ResNet-18, so
the fine-tuning recipes (BN kept unfolded, statistics re-estimated) apply unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = ["SmallResNet", "small_resnet", "small_resnet_from_file"]


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + identity)


class SmallResNet(nn.Module):
    """ResNet for (B, in_channels, 28, 28) inputs -> (B, num_classes) logits."""

    def __init__(
        self,
        widths: Sequence[int] = (16, 32, 64),
        blocks: int = 1,
        num_classes: int = 10,
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be positive integers, got {widths!r}")
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {blocks}")
        self.widths = tuple(int(w) for w in widths)
        self.blocks = int(blocks)
        self.conv1 = nn.Conv2d(in_channels, self.widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(self.widths[0])
        stages = []
        c_in = self.widths[0]
        for i, c in enumerate(self.widths):
            layers = [_BasicBlock(c_in, c, stride=1 if i == 0 else 2)]
            layers += [_BasicBlock(c, c, 1) for _ in range(self.blocks - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = c
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, widths[-1]) pooled features (the last non-classifier representation)."""
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def small_resnet(widths: Sequence[int] = (16, 32, 64), blocks: int = 1, num_classes: int = 10) -> SmallResNet:
    """A freshly initialised SmallResNet (use ``pvq.training.pretrain_small_resnet`` for trained weights)."""
    return SmallResNet(widths=widths, blocks=blocks, num_classes=num_classes)


def small_resnet_from_file(path: str | os.PathLike[str]) -> SmallResNet:
    """A SmallResNet from its state dict; widths/blocks inferred from the keys."""
    from pvq.errors import PvqInputError
    from pvq.models._files import check_stored_tensor

    path = Path(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PvqInputError(f"{path}: file not found") from None
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is bad input
        raise PvqInputError(f"{path}: cannot read checkpoint ({type(exc).__name__})") from None
    if not isinstance(sd, dict) or "conv1.weight" not in sd:
        raise PvqInputError(f"{path}: not a SmallResNet state dict (no 'conv1.weight')")
    for name, t in sd.items():
        if not isinstance(t, torch.Tensor):
            raise PvqInputError(f"{path}: '{name}' is a {type(t).__name__}, not a tensor")
        check_stored_tensor(t, f"{path}: tensor '{name}'")
    if sd["conv1.weight"].ndim != 4 or "fc.weight" not in sd or sd["fc.weight"].ndim != 2:
        raise PvqInputError(f"{path}: not a SmallResNet state dict (conv1.weight 4-D and fc.weight 2-D needed)")
    widths, blocks = [], 0
    i = 0
    while f"layers.{i}.0.conv1.weight" in sd:
        if sd[f"layers.{i}.0.conv1.weight"].ndim != 4:
            raise PvqInputError(f"{path}: not a SmallResNet state dict ('layers.{i}.0.conv1.weight' is not 4-D)")
        widths.append(int(sd[f"layers.{i}.0.conv1.weight"].shape[0]))
        i += 1
    while f"layers.0.{blocks}.conv1.weight" in sd:
        blocks += 1
    if not widths:
        raise PvqInputError(f"{path}: not a SmallResNet state dict (no layers)")
    model = SmallResNet(widths, blocks, num_classes=int(sd["fc.weight"].shape[0]),
                        in_channels=int(sd["conv1.weight"].shape[1]))
    try:
        model.load_state_dict(sd)
    except RuntimeError as exc:
        raise PvqInputError(f"{path}: state dict does not fit a SmallResNet ({str(exc).splitlines()[0]})") from None
    return model.eval()
