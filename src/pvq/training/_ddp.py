"""Multi-GPU data parallelism under ``torchrun`` (DistributedDataParallel), kept minimal.

``torchrun --nproc_per_node N -m pvq finetune ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; ``init_distributed``
then joins the process group (nccl on CUDA, gloo on CPU). Each rank trains on every ``world``-th
example of the shared seeded permutation; gradients are averaged by DDP; rank 0 writes outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["DistInfo", "dist_info", "init_distributed", "wrap_ddp", "unwrap"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0


def dist_info() -> DistInfo:
    """The current process group's rank/world (rank 0 of 1 when not distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return DistInfo(torch.distributed.get_rank(), torch.distributed.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def init_distributed(device: str) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); returns the rank info.

    On CUDA the process is bound to ``cuda:LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not torch.distributed.is_available():
        return DistInfo()
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        torch.distributed.init_process_group(backend=backend)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    return dist_info()


def wrap_ddp(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    if info.world <= 1:
        return model
    ids = [device.index if device.index is not None else info.local_rank] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
