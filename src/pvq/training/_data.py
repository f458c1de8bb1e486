"""Dataset plumbing for fine-tuning: train/validation split, fixed subsets, fast batching."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

__all__ = ["train_val_split", "fixed_subset", "iterate_batches", "dataset_len"]


def dataset_len(ds: Dataset) -> int:
    return len(ds)  # type: ignore[arg-type]


def _take(ds: Dataset, idx: torch.Tensor) -> Dataset:
    if isinstance(ds, TensorDataset):
        return TensorDataset(*(t[idx] for t in ds.tensors))
    return Subset(ds, idx.tolist())


def train_val_split(ds: Dataset, val_size: int, seed: int) -> tuple[Dataset, Dataset]:
    """Split ``ds`` into (train, val) with ``val_size`` examples held out, by a seeded permutation.

    The validation split chooses learning rates; the test split is never used for any choice.
    """
    n = dataset_len(ds)
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be in 1..{n - 1}, got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return _take(ds, perm[val_size:]), _take(ds, perm[:val_size])


def fixed_subset(ds: Dataset, n: int | None, seed: int) -> Dataset:
    """The first ``n`` examples of a seeded permutation (all of ``ds`` when n is None or >= len)."""
    total = dataset_len(ds)
    if n is None or n >= total:
        return ds
    if n < 1:
        raise ValueError(f"subset size must be >= 1, got {n}")
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return _take(ds, perm[:n])


def iterate_batches(
    ds: Dataset, batch_size: int, *, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, labels) batches. Shuffling is by a seeded permutation; under DDP each rank takes every
    ``world``-th example of it (the DistributedSampler rule). TensorDatasets are indexed directly (fast)."""
    n = dataset_len(ds)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(n)
    if world > 1:  # equal shards, so every rank runs the same number of steps (DDP would hang otherwise)
        order = order[: (n // world) * world]
    order = order[rank::world]
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    if isinstance(ds, TensorDataset):
        x_all, y_all = ds.tensors[0], ds.tensors[1]
        for i in range(0, stop, batch_size):
            idx = order[i : i + batch_size]
            yield x_all[idx], y_all[idx]
        return
    loader = DataLoader(Subset(ds, order[:stop].tolist()), batch_size=batch_size, shuffle=False)
    yield from loader
