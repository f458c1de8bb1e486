"""A small CIFAR-style ResNet for 28x28 grayscale images (Fashion-MNIST): the CPU stand-in for ResNet-18.

Layout (He et al. 2016, the CIFAR variant): a 3x3 stem conv, three stages of ``blocks`` BasicBlocks
with ``widths`` channels (stride 2 between stages, 1x1 conv shortcuts where the shape changes),
global average pooling and one linear classifier. Batch norm after every conv, as in ResNet-18, so
the fine-tuning recipes (BN kept unfolded, statistics re-estimated) apply unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["SmallResNet", "small_resnet"]


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
