"""Batch-norm statistics re-estimation (the paper re-estimates BN after QAT and after pruning)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["reestimate_bn"]


@torch.no_grad()
def reestimate_bn(model: nn.Module, batches: Iterable[torch.Tensor], device: str | torch.device = "cpu") -> int:
    """Reset every BatchNorm's running mean/var and re-estimate them as the exact average over ``batches``.

    ``batches``: iterable of input tensors (B, ...) (or (input, label) pairs). Weights, BN affine
    parameters and the model's train/eval mode are left unchanged. Returns the number of batches used.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    was_training = model.training
    saved = [(m.momentum, m.track_running_stats) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: equal weight for every batch
    model.train()
    n = 0
    for batch in batches:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        model(x.to(device))
        n += 1
    for m, (mom, _) in zip(bns, saved, strict=True):
        m.momentum = mom
    model.train(was_training)
    return n
