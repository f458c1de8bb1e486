"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant: ReLU6, no squeeze-excitation, fixed stem/head).

Module names follow the ``efficientnet-lite0-57934424.pth`` file (EfficientNet-PyTorch layout:
``_conv_stem``, ``_blocks.i._expand_conv/_depthwise_conv/_project_conv``, ``_conv_head``, ``_fc``);
``timm_name`` maps them onto timm's ``tf_efficientnet_lite0`` names. The weights come from
TensorFlow, so convolutions use TF "SAME" padding (asymmetric for stride 2) and BatchNorm eps 1e-3.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EfficientNetLite", "efficientnet_lite0", "timm_name"]

# (repeats, kernel, stride, expand ratio, c_in, c_out) per stage, EfficientNet-B0 / Lite0
_LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                 (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))  # fmt: skip
_BN = {"eps": 1e-3, "momentum": 0.01}


class _Conv(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (``tf_same=True``) or symmetric (k-1)//2 padding."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, tf_same: bool = True
    ):
        super().__init__(
            c_in, c_out, kernel, stride, 0 if tf_same else (kernel - 1) // 2, groups=groups, bias=False
        )
        self.tf_same = tf_same

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            pads = []
            for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True):
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]  # TF puts the odd pixel at the end
            x = F.pad(x, pads)
        return super().forward(x)


class _MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation: expand 1x1, depthwise kxk, project 1x1."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, tf_same: bool) -> None:
        super().__init__()
        hidden = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = _Conv(c_in, hidden, 1, tf_same=tf_same)
            self._bn0 = nn.BatchNorm2d(hidden, **_BN)
        self._depthwise_conv = _Conv(hidden, hidden, kernel, stride, groups=hidden, tf_same=tf_same)
        self._bn1 = nn.BatchNorm2d(hidden, **_BN)
        self._project_conv = _Conv(hidden, c_out, 1, tf_same=tf_same)
        self._bn2 = nn.BatchNorm2d(c_out, **_BN)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))  # linear bottleneck
        return x + h if self.skip else h


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0 for (B, 3, H, W) images -> (B, num_classes) logits.

    ``tf_same=True`` (default) reproduces TensorFlow's padding, which the bundled TF-trained weights need.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2, tf_same: bool = True) -> None:
        super().__init__()
        self._conv_stem = _Conv(3, 32, 3, 2, tf_same=tf_same)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        blocks = []
        for repeats, kernel, stride, expand, c_in, c_out in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(
                    _MBConv(
                        c_in if i == 0 else c_out, c_out, kernel, stride if i == 0 else 1, expand, tf_same
                    )
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _Conv(320, 1280, 1, tf_same=tf_same)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, H/2, W/2)
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))  # (B, 1280, H/32, W/32)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self._fc(self._dropout(x))  # (B, num_classes)


def efficientnet_lite0(num_classes: int = 1000, tf_same: bool = True) -> EfficientNetLite:
    return EfficientNetLite(num_classes=num_classes, tf_same=tf_same)


def timm_name(name: str) -> str:
    """A key of this module (and of the bundled file) -> the key of timm's ``tf_efficientnet_lite0``."""
    top = {
        "_conv_stem": "conv_stem",
        "_bn0": "bn1",
        "_conv_head": "conv_head",
        "_bn1": "bn2",
        "_fc": "classifier",
    }
    stem, _, param = name.rpartition(".")
    if stem in top:
        return f"{top[stem]}.{param}"
    m = re.match(r"_blocks\.(\d+)\.(\w+)$", stem)
    if not m:
        return name
    idx = int(m.group(1))
    stage, offset = 0, idx
    for s, (repeats, *_rest) in enumerate(_LITE0_STAGES):
        if offset < repeats:
            stage = s
            break
        offset -= repeats
    part = m.group(2)
    if stage == 0:  # timm's DepthwiseSeparableConv: conv_dw, bn1, conv_pw, bn2
        sub = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}[part]
    else:  # InvertedResidual: conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3
        sub = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
               "_project_conv": "conv_pwl", "_bn2": "bn3"}[part]  # fmt: skip
    return f"blocks.{stage}.{offset}.{sub}.{param}"
