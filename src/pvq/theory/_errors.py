"""Expected quantization and pruning errors of a distribution, computed (not sampled).

Quantization (paper eq. 2, App. A eqs. 9-15): the real line is cut at the midpoints of the scaled grid
``q = scale * levels``; every cell contributes ``I(a, b, q_i) = ∫_a^b (w - q_i)² p(w) dw``
``= ΔM_2 - 2 q_i ΔM_1 + q_i² ΔM_0`` from the distribution's closed-form partial moments. The outer
cells run to the ends of the support, so the sum is rounding + clipping error; clipping alone is
``I(w_min, q_min, q_min) + I(q_max, w_max, q_max)`` (eq. 15). Any sorted level set works (int, float, NF).

Pruning (eq. 3): magnitude pruning at sparsity s zeroes ``|w| < t`` with ``P(|W| < t) = s``, so
``t = F^{-1}(1/2 + s/2)`` and the error is ``2 ∫_0^t w² p(w) dw = 2 M_2(t)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pvq.formats import Format, get_format
from pvq.theory._distributions import Distribution

__all__ = [
    "QuantError",
    "as_format",
    "quant_mse_many",
    "quant_error",
    "expected_quant_mse",
    "optimal_quant",
    "optimal_quant_error",
    "prune_threshold",
    "expected_prune_mse",
]


@dataclass(frozen=True)
class QuantError:
    """Expected quantization error of ``dist`` on ``format`` at ``scale`` (MSE in units of w²)."""

    format: str
    scale: float
    mse: float
    rounding: float
    clipping: float
    clip_low: float  # scale * q_min
    clip_high: float  # scale * q_max


def as_format(fmt_or_bits: Format | str | int) -> Format:
    """``4`` -> ``int4`` (symmetric signed), ``"fp8_e4m3"`` -> that format, a Format -> itself."""
    if isinstance(fmt_or_bits, Format):
        return fmt_or_bits
    if isinstance(fmt_or_bits, (int, np.integer)) and not isinstance(fmt_or_bits, bool):
        return get_format(f"int{int(fmt_or_bits)}")
    if isinstance(fmt_or_bits, str):
        return get_format(fmt_or_bits)
    raise TypeError(f"expected a Format, a format name or a bit-width, got {fmt_or_bits!r}")


def quant_mse_many(
    dist: Distribution, levels: np.ndarray, scales: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Total and clipping MSE for many scales at once.

    levels: (L,) ascending grid at scale 1; scales: (S,) positive. Returns (mse (S,), clipping (S,)).
    """
    levels = np.asarray(levels, dtype=np.float64)
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    q = scales[:, None] * levels[None, :]  # (S, L) scaled grid
    mids = 0.5 * (q[:, 1:] + q[:, :-1])  # (S, L-1) decision thresholds
    n_s = scales.shape[0]
    edges = np.concatenate([np.full((n_s, 1), dist.lo), mids, np.full((n_s, 1), dist.hi)], axis=1)  # (S, L+1)
    d0, d1, d2 = (np.diff(dist.partial_moment(k, edges), axis=1) for k in (0, 1, 2))  # (S, L) per cell
    mse = np.sum(d2 - 2.0 * q * d1 + q * q * d0, axis=1)
    clipping = _interval_err(dist, dist.lo, q[:, 0], q[:, 0]) + _interval_err(
        dist, q[:, -1], dist.hi, q[:, -1]
    )
    return np.maximum(mse, 0.0), np.maximum(clipping, 0.0)


def _interval_err(
    dist: Distribution, a: np.ndarray | float, b: np.ndarray | float, w0: np.ndarray
) -> np.ndarray:
    """``I(a, b, w0) = ∫_a^b (w - w0)² p(w) dw`` (eq. 13); zero where ``b <= a`` (after clipping to support)."""
    a = np.clip(np.broadcast_to(np.asarray(a, dtype=np.float64), w0.shape), dist.lo, dist.hi)
    b = np.clip(np.broadcast_to(np.asarray(b, dtype=np.float64), w0.shape), dist.lo, dist.hi)
    b = np.maximum(a, b)
    m = [dist.partial_moment(k, b) - dist.partial_moment(k, a) for k in (0, 1, 2)]
    return m[2] - 2.0 * w0 * m[1] + w0 * w0 * m[0]


def quant_error(dist: Distribution, fmt_or_bits: Format | str | int, scale: float) -> QuantError:
    """The expected quantization error at one ``scale`` (rounding and clipping parts)."""
    fmt = as_format(fmt_or_bits)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    mse, clip = quant_mse_many(dist, fmt.levels(), np.array([scale]))
    return QuantError(
        format=fmt.name,
        scale=float(scale),
        mse=float(mse[0]),
        rounding=float(max(mse[0] - clip[0], 0.0)),
        clipping=float(clip[0]),
        clip_low=float(scale * fmt.qmin),
        clip_high=float(scale * fmt.qmax),
    )


def expected_quant_mse(dist: Distribution, fmt_or_bits: Format | str | int, scale: float) -> float:
    """``E[(Q(W) - W)²]`` at ``scale`` (eq. 2): rounding + clipping, exact up to special-function precision."""
    return quant_error(dist, fmt_or_bits, scale).mse


def optimal_quant_error(
    dist: Distribution, fmt_or_bits: Format | str | int, *, n_grid: int = 256, max_refine: int = 10
) -> QuantError:
    """The MSE-optimal scale and its error.

    The error is not unimodal in the scale at low bit-widths, so: evaluate ``n_grid`` clipping
    thresholds (plus, on a bounded support, every threshold where a level or cell edge crosses its end)
    log-spaced from the 52 % quantile to 4x the support end (2x the 1 - 1e-12 quantile if unbounded), then refine
    every grid-local minimum within 2 % of the best grid value (the ``max_refine`` lowest) between its
    neighbours by repeated vectorised zooming (:func:`_zoom_minima`), and keep the global best.
    """
    fmt = as_format(fmt_or_bits)
    levels = fmt.levels()
    top = fmt.max_level
    t_lo = float(dist.quantile(0.52))
    # bounded support: non-uniform grids (NF) can gain from stretching their outer levels beyond it
    t_hi = 4.0 * dist.hi if math.isfinite(dist.hi) else 2.0 * float(dist.quantile(1.0 - 1e-12))
    ts = np.geomspace(t_lo, t_hi, n_grid)
    if math.isfinite(dist.hi):
        # the error has kinks where a level or a cell edge crosses the end of the support: add them all
        marks = np.abs(np.concatenate([levels, (levels[1:] + levels[:-1]) / 2]))
        kinks = dist.hi * top / marks[marks > 0]
        ts = np.unique(np.concatenate([ts, kinks[(kinks > t_lo) & (kinks < t_hi)]]))
    n_grid = ts.size
    mse, _ = quant_mse_many(dist, levels, ts / top)
    # grid-local minima (plateaus count once) that come within 2 % of the best grid value
    padded = np.concatenate([[np.inf], mse, [np.inf]])
    is_min = (padded[1:-1] <= padded[:-2]) & (padded[1:-1] < padded[2:]) & (mse <= 1.02 * mse.min())
    cand = np.nonzero(is_min)[0]
    cand = cand[np.argsort(mse[cand])][:max_refine]
    lo = ts[np.maximum(cand - 1, 0)]
    hi = ts[np.minimum(cand + 1, n_grid - 1)]
    best_t, best = _zoom_minima(dist, levels, top, lo, hi)
    j = int(np.argmin(mse))
    if mse[j] < best:
        best_t, best = float(ts[j]), float(mse[j])
    return quant_error(dist, fmt, best_t / top)


def _zoom_minima(
    dist: Distribution, levels: np.ndarray, top: float, lo: np.ndarray, hi: np.ndarray, *, points: int = 9
) -> tuple[float, float]:
    """Minimise the MSE over clipping thresholds in each bracket ``[lo_i, hi_i]`` (all brackets at once):
    evaluate ``points`` evenly spaced thresholds per bracket, shrink each bracket to the neighbours of
    its best point, repeat until the brackets are 1e-10 relative. Returns the overall best (t, mse)."""
    best_t, best = float(lo[0]), math.inf
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    frac = np.linspace(0.0, 1.0, points)
    for _ in range(60):
        ts = lo[:, None] + (hi - lo)[:, None] * frac[None, :]  # (C, points)
        mse, _ = quant_mse_many(dist, levels, ts.ravel() / top)
        mse = mse.reshape(ts.shape)
        j = np.argmin(mse, axis=1)
        rows = np.arange(ts.shape[0])
        k = int(np.argmin(mse[rows, j]))
        if mse[k, j[k]] < best:
            best, best_t = float(mse[k, j[k]]), float(ts[k, j[k]])
        lo = ts[rows, np.maximum(j - 1, 0)]
        hi = ts[rows, np.minimum(j + 1, points - 1)]
        if np.all(hi - lo <= 1e-10 * hi):
            break
    return best_t, best


def optimal_quant(dist: Distribution, fmt_or_bits: Format | str | int) -> tuple[float, float]:
    """``(scale, mse)`` of the MSE-optimal scale (see :func:`optimal_quant_error`)."""
    err = optimal_quant_error(dist, fmt_or_bits)
    return err.scale, err.mse


def prune_threshold(dist: Distribution, sparsity: float) -> float:
    """Magnitude threshold t with ``P(|W| < t) = sparsity``: ``F^{-1}(1/2 + s/2)``."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    return float(dist.quantile(0.5 + 0.5 * sparsity))


def expected_prune_mse(dist: Distribution, sparsity: float) -> float:
    """``E[(W - T(W))²] = 2 ∫_0^t w² p(w) dw`` at ``sparsity`` (eq. 3); 0 at 0 %, ``E[W²]`` at 100 %."""
    t = prune_threshold(dist, sparsity)
    return float(2.0 * dist.partial_moment(2, t))
