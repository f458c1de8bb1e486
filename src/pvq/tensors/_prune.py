"""Pruning errors at equal compression: unstructured magnitude pruning (any ratio, from the sorted
tensor), per-output-channel magnitude pruning, and N:M structured sparsity."""

from __future__ import annotations

import numpy as np
import torch

from pvq.tensors._sorted import SortedTensor

__all__ = [
    "num_pruned",
    "prune_sse",
    "rows_view",
    "per_channel_prune_sse",
    "nm_groups",
    "nm_prune_sse",
    "corrected_keep",
]


def num_pruned(n: int, sparsity: float) -> int:
    """Weights zeroed at sparsity s: ``floor(s * n)`` (DESIGN.md; the published code's ``int(s * n)``)."""
    return int(min(max(sparsity, 0.0), 1.0) * n)


def prune_sse(st: SortedTensor, sparsity: float) -> float:
    """Squared error sum of zeroing the ``floor(s n)`` smallest-magnitude weights (ties: any order,
    the error is the same)."""
    return float(st.smallest_squares(num_pruned(st.n, sparsity)))


def rows_view(w: torch.Tensor) -> np.ndarray:
    """The weight as (output channels, inputs) float64; 1-D tensors are one row."""
    a = w.detach().to(torch.float32).cpu().numpy().astype(np.float64)
    return a.reshape(1, -1) if a.ndim < 2 else a.reshape(a.shape[0], -1)


def per_channel_prune_sse(rows: np.ndarray, sparsity: float) -> float:
    """Magnitude pruning inside every output channel: each row of (C, m) zeroes its floor(s m) smallest."""
    j = num_pruned(rows.shape[1], sparsity)
    if j == 0:
        return 0.0
    sq = np.sort(rows * rows, axis=1)
    return float(sq[:, :j].sum())


def nm_groups(w: torch.Tensor, m: int) -> tuple[np.ndarray, int]:
    """Groups of ``m`` consecutive weights along the input dimension, shape (G, m), float64.

    Conv weights (O, I, kh, kw) are laid out as (O, kh, kw, I) first (input channels innermost, as
    sparse tensor cores group them); rows whose length is not a multiple of m are padded with zeros
    (returned: the number of padding zeros).
    """
    t = w.detach().to(torch.float32).cpu()
    if t.ndim > 2:
        t = t.movedim(1, -1)
    rows = (
        t.reshape(t.shape[0], -1).numpy().astype(np.float64)
        if t.ndim >= 2
        else t.reshape(1, -1).numpy().astype(np.float64)
    )
    pad = (-rows.shape[1]) % m
    if pad:
        rows = np.concatenate([rows, np.zeros((rows.shape[0], pad))], axis=1)
    return rows.reshape(-1, m), pad * rows.shape[0]


def nm_prune_sse(w: torch.Tensor, n_keep: int, m: int) -> float:
    """Squared error sum of N:M sparsity: in each group of m, keep the n_keep largest magnitudes."""
    if not 0 < n_keep <= m:
        raise ValueError(f"N:M needs 0 < N <= M, got {n_keep}:{m}")
    groups, _ = nm_groups(w, m)
    if n_keep == m:
        return 0.0
    sq = np.sort(groups * groups, axis=1)
    return float(sq[:, : m - n_keep].sum())


def corrected_keep(zeros: int, n: int, bits: int, paper_float32: bool = False) -> float:
    """Keep ratio of "corrected" pruning: as many non-zeros as the quantized tensor, ``(1 - z/n) b/16``.

    ``paper_float32``: the natural sparsity rounded to float32 first, as the published code computes it.
    """
    qs = float(np.float32(zeros) / np.float32(n)) if paper_float32 else zeros / n
    return (1.0 - qs) * bits / 16.0
