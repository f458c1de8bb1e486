"""Where pruning wins, as a function of kurtosis (paper Fig. 3 right): kernel densities of log-kurtosis
for the tensors where pruning has the higher SNR and for those where quantization has."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["WinDensity", "win_density"]


@dataclass(frozen=True)
class WinDensity:
    """Densities over ``kurtosis`` (K,) (Pearson, log-spaced): ``p_prune[k]`` and ``p_quant[k]`` are
    joint densities (fraction of tensors x conditional density of log10 kurtosis), so they sum to the
    density of all tensors; ``prob_prune`` = p_prune / (p_prune + p_quant)."""

    kurtosis: np.ndarray
    p_prune: np.ndarray
    p_quant: np.ndarray
    n_prune: int
    n_quant: int

    @property
    def prob_prune(self) -> np.ndarray:
        tot = self.p_prune + self.p_quant
        return np.divide(self.p_prune, tot, out=np.zeros_like(tot), where=tot > 0)

    def crossover(self) -> float:
        """Smallest kurtosis where pruning's density exceeds quantization's (nan if nowhere)."""
        above = np.flatnonzero(self.p_prune > self.p_quant)
        return float(self.kurtosis[above[0]]) if above.size else float("nan")


def _kde(x: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian kernel density of samples x at the grid points (integrates to 1 over the real line)."""
    if x.size == 0:
        return np.zeros_like(grid)
    z = (grid[:, None] - x[None, :]) / bandwidth
    return np.exp(-0.5 * z * z).sum(axis=1) / (x.size * bandwidth * np.sqrt(2 * np.pi))


def win_density(
    kurtosis: np.ndarray,
    prune_wins: np.ndarray,
    grid: np.ndarray | None = None,
    bandwidth: float | None = None,
) -> WinDensity:
    """Kernel densities of log10(kurtosis) split by which method wins (non-finite kurtosis dropped).

    bandwidth (in log10 units): Scott's rule on all tensors by default, shared by both densities.
    """
    k = np.asarray(kurtosis, dtype=np.float64)
    wins = np.asarray(prune_wins, dtype=bool)
    ok = np.isfinite(k) & (k > 0)
    x, wins = np.log10(k[ok]), wins[ok]
    if grid is None:
        lo, hi = (x.min(), x.max()) if x.size else (0.0, 1.0)
        grid = np.logspace(lo - 0.1, hi + 0.1, 256)
    g = np.log10(np.asarray(grid, dtype=np.float64))
    if bandwidth is None:
        sd = float(x.std()) if x.size > 1 else 0.1
        bandwidth = max(sd, 1e-3) * max(x.size, 1) ** (-1.0 / 5.0)
    n = max(x.size, 1)
    p_prune = _kde(x[wins], g, bandwidth) * wins.sum() / n
    p_quant = _kde(x[~wins], g, bandwidth) * (~wins).sum() / n
    return WinDensity(
        np.asarray(grid, dtype=np.float64), p_prune, p_quant, int(wins.sum()), int((~wins).sum())
    )
