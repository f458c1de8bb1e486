"""Per-output-channel quantization: one MSE-optimised scale per row of the weight (an extra column).

Each row's scale starts from the best of a coarse set of clipping ratios and is refined by the exact
fixed-point update ``s = sum(w l) / sum(l^2)`` (the best scale for the current assignment), which
never increases a row's error. Vectorised over rows: O(n) per candidate, independent of row count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["per_channel_quant_sse"]


def _assign(rows: np.ndarray, scales: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Level of every weight at per-row scales (nearest, ties up): rows (C, m), scales (C,) -> (C, m)."""
    mids = 0.5 * (levels[1:] + levels[:-1])
    return levels[np.searchsorted(mids, rows / scales[:, None], side="right")]


def per_channel_quant_sse(
    rows: np.ndarray, levels: np.ndarray, n_coarse: int = 24, n_refine: int = 8
) -> tuple[float, int, np.ndarray]:
    """Total squared error, zero count and per-row scales of per-channel quantization.

    rows: (C, m) float64 weights (output channel first); levels: (L,) ascending format levels.
    """
    levels = np.asarray(levels, dtype=np.float64)
    amax = np.abs(rows).max(axis=1)
    live = amax > 0
    pos_max = float(levels[-1]) if levels[-1] > 0 else float(np.abs(levels).max())
    base = np.where(live, amax, 1.0) / pos_max
    best_s = base.copy()
    best_e = np.full(rows.shape[0], np.inf)
    for frac in np.linspace(1.0 / n_coarse, 1.0, n_coarse):
        s = base * frac
        err = rows - _assign(rows, s, levels) * s[:, None]
        e = np.einsum("ij,ij->i", err, err)
        better = e < best_e
        best_s[better], best_e[better] = s[better], e[better]
    for _ in range(n_refine):
        lv = _assign(rows, best_s, levels)
        a = np.einsum("ij,ij->i", lv, lv)
        b = np.einsum("ij,ij->i", lv, rows)
        s = np.where((a > 0) & (b > 0), b / np.where(a > 0, a, 1.0), best_s)
        err = rows - _assign(rows, s, levels) * s[:, None]
        e = np.einsum("ij,ij->i", err, err)
        better = e < best_e
        if not better.any():
            break
        best_s[better], best_e[better] = s[better], e[better]
    best_e[~live] = 0.0
    q = _assign(rows, best_s, levels) * best_s[:, None]
    zeros = int(np.count_nonzero(q == 0.0))
    return float(best_e.sum()), zeros, best_s
