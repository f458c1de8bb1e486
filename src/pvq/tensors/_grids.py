"""Exact squared error of quantization grids on a :class:`SortedTensor`, many scales at once.

Two evaluators:

- :func:`levels_sse`: any sorted level set (integer, FP8/FP4, NF4) at any scales, in exact real
  arithmetic: a weight goes to the nearest level ``s * l_k`` (cell boundaries at the midpoints).
- :func:`int_grid_sse_f32`: a symmetric signed integer grid evaluated the way the published float32
  code quantizes, ``clamp(round_half_even(fl32(w / delta)), qmin, qmax) * delta``: every cell boundary
  is the exact smallest float32 weight that rounds up, so cell membership (and the zero count) match
  a direct float32 implementation bit for bit.
"""

from __future__ import annotations

import numpy as np

from pvq.tensors._sorted import SortedTensor

__all__ = [
    "levels_sse",
    "int_levels",
    "int_grid_sse_f32",
    "published_deltas",
    "f32_round_thresholds",
]


def int_levels(bits: int) -> np.ndarray:
    """The symmetric signed b-bit integer levels ``-2^(b-1) .. 2^(b-1)-1`` as float64 (DESIGN.md)."""
    return np.arange(-(2 ** (bits - 1)), 2 ** (bits - 1), dtype=np.float64)


def levels_sse(
    st: SortedTensor, scales: np.ndarray, levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Squared error sums of rounding to ``scales[c] * levels`` (nearest level, ends clip).

    scales: (C,) positive; levels: (L,) ascending. Returns ``(sse (C,), zeros (C,), stats)`` where
    ``zeros`` counts the weights mapped to the level 0 (0 when the grid has no zero) and ``stats``
    is the :class:`CellStats` (for the scale update ``s = sum(w l) / sum(l^2)``).
    """
    scales = np.asarray(scales, dtype=np.float64).reshape(-1)
    levels = np.asarray(levels, dtype=np.float64)
    mid = 0.5 * (levels[1:] + levels[:-1])  # (L-1,)
    stats = st.cells(scales[:, None] * mid[None, :])
    centers = scales[:, None] * levels[None, :]
    sse = stats.sse(centers)
    zero = np.flatnonzero(levels == 0.0)
    zeros = stats.count[:, zero[0]] if zero.size else np.zeros(scales.size)
    return sse, zeros, stats


def published_deltas(max_abs: float, bits: int, num: int = 100, margin: float = 0.5) -> np.ndarray:
    """The published grid search's candidate step sizes, float32, shape (num,).

    Clipping thresholds ``t_i = i * (max|w| + margin) / num`` (float64), converted to float32, and
    ``delta_i = fl32(t_i / (2^(b-1) - 1))`` as the published float32 quantizer computes them.
    """
    step = (float(max_abs) + margin) / num
    t = (step * np.arange(1, num + 1, dtype=np.float64)).astype(np.float32)
    qmax = np.float32(2 ** (bits - 1) - 1)
    return (t / qmax).astype(np.float32)


def f32_round_thresholds(deltas: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    """Cell boundaries of the float32 quantizer ``round_half_even(fl32(x / delta))``, shape (C, qmax - qmin).

    Entry k (level qmin + k -> qmin + k + 1) is the smallest float32 ``x`` with
    ``round(fl32(x / delta)) >= qmin + k + 1``. For x >= 0 the real boundary ``(j + 1/2) delta`` moves by
    at most a couple of float32 ulps (rounding of the division, round-half-to-even), so the exact one
    is found among the ulp neighbours of ``fl32((j + 1/2) delta)``; the negative side follows from
    ``round(fl32(-x / d)) = -round(fl32(x / d))``.
    """
    d = np.asarray(deltas, dtype=np.float32).reshape(-1, 1, 1)
    kmax = max(-qmin, qmax)
    half = np.arange(kmax, dtype=np.float64) + 0.5  # j + 1/2, j = 0..kmax-1
    x0 = (half[None, :] * d[:, :, 0].astype(np.float64)).astype(np.float32)  # (C, K), positive
    offs = np.arange(-2, 3, dtype=np.int32)
    xs = (x0.view(np.int32)[..., None] + offs).view(np.float32)  # ulp neighbours, ascending
    up = np.rint(np.divide(xs, d, dtype=np.float32)) >= (half[None, :, None] + 0.5)
    if up[..., 0].any() or not up[..., -1].all():  # pragma: no cover - impossible for IEEE division
        raise ArithmeticError("float32 rounding threshold outside the searched ulp window")
    tau = np.take_along_axis(xs, np.argmax(up, axis=-1)[..., None], axis=-1)[..., 0]  # (C, K)
    # {x : round(x/d) >= -j} = {x > -tau_j}: smallest float32 above -tau_j is -(float32 below tau_j)
    neg = -((tau.view(np.int32) - 1).view(np.float32))
    neg_part = neg[:, :-qmin][:, ::-1]  # boundaries qmin -> qmin+1, ..., -1 -> 0 (ascending)
    return np.concatenate([neg_part, tau[:, :qmax]], axis=1).astype(np.float64)


def int_grid_sse_f32(st: SortedTensor, deltas: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Squared error sums (float64) and zero counts of the published float32 quantizer at each step.

    deltas: (C,) float32 steps. Cell membership is exact (see :func:`f32_round_thresholds`) and each
    cell is reconstructed as ``fl32(delta * k)``, as the published code does; only the final sum is
    in float64 instead of float32 (re-check near-ties with a direct float32 pass).
    """
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    d = np.asarray(deltas, dtype=np.float32).reshape(-1)
    stats = st.cells(f32_round_thresholds(d, qmin, qmax))
    k = np.arange(qmin, qmax + 1, dtype=np.float32)
    centers = (d[:, None] * k[None, :]).astype(np.float64)  # fl32(delta * k)
    return stats.sse(centers), stats.count[:, -qmin]
