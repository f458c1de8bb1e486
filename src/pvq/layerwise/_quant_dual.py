"""A Lagrangian lower bound for box-constrained integer least squares (exact quantization), valid for
any subtree of the sphere-decoding search.

Split ``G = M + D`` with ``D = diag(d) > 0`` and ``M = G - D`` positive semi-definite. For every ``u`` (n,)
and ``y = 2 M u``, ``(z - c)^T M (z - c) >= y^T (z - c) - u^T M u`` (the minimum over real ``x`` of
``x^T M x - y^T x`` is ``-u^T M u``), so for every integer ``z`` in the box

    ``(z - c)^T G (z - c) >= -u^T M u + sum_i f_i(z_i)``,  ``f_i(v) = d_i (v - c_i)^2 + y_i (v - c_i)``,

a separable bound: fixing some coordinates replaces their ``min_v f_i(v)`` by ``f_i(z_i)``. Maximising
the root's value over ``u`` (concave, non-smooth) is the dual of a diagonal-split relaxation (of the
strength of the paper's SDP bound at best); a Polyak subgradient ascent does it, and every iterate is a
valid bound. ``d`` as in :mod:`pvq.layerwise._prune_dual`: ``0.99 lambda_min(E^-1/2 G E^-1/2) E``,
``E = 1 / diag(G^-1)``, with ``M`` certified positive definite.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from pvq.layerwise._prune_dual import _split

__all__ = ["QuantDual", "quant_dual", "level_values"]


@dataclass(frozen=True)
class QuantDual:
    """``d``, ``y``, ``c`` (n,) of the bound ``const + sum_i f_i(z_i)`` (``const = -u^T M u``, lowered by
    a rounding margin); ``fmin`` (n,) each ``min_v f_i(v)`` over the box; ``root``: the bound with
    nothing fixed; ``iters``: subgradient steps taken."""

    d: np.ndarray
    y: np.ndarray
    c: np.ndarray
    fmin: np.ndarray
    const: float
    root: float
    iters: int

    def f(self, i: int, v: float) -> float:
        """``f_i(v)``."""
        e = v - self.c[i]
        return float(self.d[i] * e * e + self.y[i] * e)


def level_values(
    d: np.ndarray, y: np.ndarray, c: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per coordinate the in-box integer minimising ``f_i`` and that minimum: ``(argmin (n,), min (n,))``."""
    x = c - y / (2.0 * d)  # the real minimiser
    a = np.clip(np.floor(x), lo, hi)
    b = np.clip(a + 1.0, lo, hi)
    fa = d * (a - c) ** 2 + y * (a - c)
    fb = d * (b - c) ** 2 + y * (b - c)
    return np.where(fa <= fb, a, b), np.minimum(fa, fb)


def quant_dual(
    G: np.ndarray,
    c: np.ndarray,
    lo: float,
    hi: float,
    upper: float,
    iters: int = 2000,
    seconds: float | None = None,
) -> QuantDual | None:
    """Maximise the root bound of ``min (z - c)^T G (z - c)``, ``z`` integer in ``[lo, hi]``, by Polyak
    steps aimed at ``upper`` (an incumbent's value), for at most ``iters`` steps or ``seconds``.
    Returns None when ``G`` is singular."""
    split = _split(G)
    if split is None:
        return None
    d, M = split
    deadline = None if seconds is None else time.perf_counter() + seconds
    u = np.zeros_like(c)
    best = None
    gamma, stall, steps = 1.0, 0, 0
    while steps < iters:
        steps += 1
        Mu = M @ u
        y = 2.0 * Mu
        zs, fm = level_values(d, y, c, lo, hi)
        quad = float(u @ Mu)
        margin = 1e-10 * (abs(quad) + float(np.abs(fm).sum()) + float(np.abs(d * (zs - c) ** 2).sum()))
        const = -quad - margin
        val = const + float(fm.sum())
        if best is None or val > best[0]:
            best, stall = (val, y.copy(), fm.copy(), const), 0
        else:
            stall += 1
            if stall >= 40:
                gamma, stall = gamma / 2.0, 0
        # supergradient in u: 2 M ((z* - c) - u)
        grad = 2.0 * (M @ ((zs - c) - u))
        gg = float(grad @ grad)
        if gg == 0.0 or val >= upper or gamma < 1e-6:
            break
        u = u + gamma * max(upper - val, 0.0) / gg * grad
        if deadline is not None and time.perf_counter() > deadline:
            break
    assert best is not None
    return QuantDual(d, best[1], np.asarray(c, dtype=np.float64), best[2], best[3], best[0], steps)
