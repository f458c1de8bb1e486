"""Splits, subsets and batching used by the fine-tuning suites."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from pvq.training import fixed_subset, iterate_batches, train_val_split


def _ds(n: int) -> TensorDataset:
    return TensorDataset(torch.arange(n, dtype=torch.float32).view(n, 1), torch.arange(n))


def test_train_val_split_is_disjoint_and_seeded() -> None:
    tr, va = train_val_split(_ds(100), 20, seed=3)
    a, b = set(tr.tensors[1].tolist()), set(va.tensors[1].tolist())
    assert len(b) == 20 and len(a) == 80 and not a & b
    tr2, va2 = train_val_split(_ds(100), 20, seed=3)
    assert torch.equal(va.tensors[1], va2.tensors[1])
    assert len(fixed_subset(tr, 10, seed=0)) == 10 and fixed_subset(tr, None, seed=0) is tr


def test_ddp_shards_are_equal_and_disjoint() -> None:
    ds = _ds(103)
    shards = [
        [int(y) for _, yb in iterate_batches(ds, 8, shuffle=True, seed=1, rank=r, world=3) for y in yb]
        for r in range(3)
    ]
    assert len({len(s) for s in shards}) == 1  # same number of examples -> same number of steps
    flat = [y for s in shards for y in s]
    assert len(flat) == len(set(flat)) == 102
