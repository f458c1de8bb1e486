"""Pruning masks from scores, per output row: unstructured at a sparsity, or N:M along the inputs.

Pure torch. Unstructured: each row keeps all but the ``floor(sparsity * cols / 100)`` lowest-scoring
inputs (per row, not per tensor: every row gets the same sparsity). N:M: in every run of ``m`` consecutive
inputs (columns ``0..m-1``, ``m..2m-1``, ...) a row keeps its ``n`` highest-scoring ones. A ragged tail of
``r < m`` columns (``cols`` not a multiple of ``m``) prunes ``floor(r * (m - n) / m)`` of them, i.e. the
same sparsity rounded down; hardware N:M layouts (2:4 sparse tensor cores, compressed-tensors' sparse-24)
need ``cols % m == 0``, which the bundled models satisfy.
"""

from __future__ import annotations

import torch

from pvq.recipes import Prune

__all__ = ["prune_lowest", "nm_keep", "pruned_per_row", "score_mask"]


def pruned_per_row(sparsity: int, cols: int) -> int:
    """Weights pruned per row by an unstructured step: ``floor(sparsity * cols / 100)`` (integer maths)."""
    return sparsity * cols // 100


def prune_lowest(score: torch.Tensor, k: int) -> torch.Tensor:
    """Keep-mask (rows, n) bool that drops the ``k`` lowest scores of each row (ties broken by position)."""
    keep = torch.ones_like(score, dtype=torch.bool)
    if k <= 0:
        return keep
    idx = torch.topk(score, k, dim=-1, largest=False, sorted=False).indices
    return keep.scatter_(-1, idx, False)


def nm_keep(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep-mask (rows, cols) bool keeping the ``n`` highest scores of every ``m`` consecutive inputs."""
    rows, cols = score.shape
    full = cols // m * m
    keep = torch.ones_like(score, dtype=torch.bool)
    if full:
        keep[:, :full] = prune_lowest(score[:, :full].reshape(rows, full // m, m), m - n).reshape(rows, full)
    r = cols - full
    if r:
        keep[:, full:] = prune_lowest(score[:, full:], r * (m - n) // m)
    return keep


def score_mask(score: torch.Tensor, prune: Prune) -> torch.Tensor:
    """Keep-mask (rows, cols) of ``prune``'s pattern (unstructured per row, or N:M) for ``score``."""
    if prune.structured:
        return nm_keep(score, prune.n, prune.m)
    return prune_lowest(score, pruned_per_row(prune.sparsity, score.shape[1]))
