"""Initial range of an asymmetric (unsigned-grid + offset) quantizer, for LSQ+ weights."""

from __future__ import annotations

import torch

__all__ = ["mse_affine"]


@torch.no_grad()
def mse_affine(w: torch.Tensor, bits: int, n_grid: int = 100) -> tuple[float, float]:
    """(scale, offset) of the unsigned b-bit affine grid ``offset + scale·{0..2^b − 1}`` minimising the
    squared error over ranges shrunk symmetrically about the midpoint of [min w, max w] (``n_grid``
    shrink factors in [0.05, 1]); a grid search, not the exact optimum. ``w``: any shape, finite."""
    w = w.detach().float().flatten()
    if w.numel() == 0 or not torch.isfinite(w).all():
        raise ValueError("mse_affine: weight tensor is empty or not finite")
    qmax = 2**bits - 1
    lo, hi = float(w.min()), float(w.max())
    if hi - lo == 0.0:
        return 1.0, lo  # constant tensor: the offset alone represents it
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    alphas = torch.linspace(0.05, 1.0, n_grid)[:, None]  # (K, 1)
    s = 2 * half * alphas / qmax
    beta = mid - half * alphas
    q = torch.clamp(torch.round((w[None, :] - beta) / s), 0, qmax) * s + beta
    i = int(torch.argmin(((w[None, :] - q) ** 2).sum(1)))
    return float(s[i, 0]), float(beta[i, 0])
