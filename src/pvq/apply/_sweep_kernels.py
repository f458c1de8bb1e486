"""Compiled inner loop of the GPTQ/SparseGPT sweep (:mod:`pvq.apply._obs`): columns ``a..b-1`` of one block.

The sweep is sequential over columns, so in torch every column costs a dozen small tensor ops (round, clamp,
dequantize, error, rank-1 update); on SmolLM2 that Python/dispatch overhead was a third of the sweep. This
kernel does the same arithmetic per element in float32, in the same order of operations as
:func:`pvq.apply._scales.quantize_codes` / ``dequantize_codes`` and the torch loop it replaces (kept in
``_obs`` as the reference for tests and float64 sweeps). Only the rank-1 update's float rounding may differ
(torch may fuse the multiply-add), so a code can differ where a value lies within an ulp of a rounding
boundary.

Layout: the block is transposed, one contiguous row per weight column: ``W1`` (count, rows).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["sweep_columns", "MODE_PRUNE", "MODE_INT", "MODE_UINT", "MODE_LEVELS"]

MODE_PRUNE = 0  # no grid: q = w where kept, 0 where pruned
MODE_INT = 1  # symmetric integers: c = clamp(round(w / s)), q = c * s
MODE_UINT = 2  # integers with zero point: c = clamp(round(w / s) + z), q = (c - z) * s
MODE_LEVELS = (
    3  # level table (fp8/fp4/nf4): c = index of the nearest level (midpoints ``mids``), q = lv[c] * s
)


@njit(cache=True)
def sweep_columns(W1, U1, a, b, S, Z, keep, masked, mode, qmin, qmax, mids, lv, Q, C, E):  # pragma: no cover
    """Fix columns ``a..b-1`` of a block in order, feeding each column's error forward inside the block.

    ``W1`` (count, rows) float32, updated in place; ``U1`` (count, count) float32, the block of the upper
    Cholesky factor of ``H^-1``; ``keep`` (count, rows) bool; ``S``/``Z`` (b - a, rows) float32 scale and
    zero point of each weight's group; ``masked``: whether ``keep`` applies to quantized values;
    ``mode``/``qmin``/``qmax``/``mids``/``lv``: the grid (see the ``MODE_*`` constants). Writes, for each
    column ``i``: ``Q[i - a]`` the fixed weights and ``C[i - a]`` the codes (as float32), both (b - a, rows),
    and ``E[i] = (w - q) / U1[i, i]``, (count, rows).
    """
    count, rows = W1.shape
    for i in range(a, b):
        d = U1[i, i]
        o = i - a
        for r in range(rows):
            w = W1[i, r]
            if mode == MODE_PRUNE:
                q = w if keep[i, r] else np.float32(0.0)
            else:
                s = S[o, r]
                if mode == MODE_LEVELS:
                    c = np.float32(np.searchsorted(mids, w / s))
                    q = lv[np.int64(c)] * s
                else:
                    c = np.rint(w / s)
                    if mode == MODE_UINT:
                        c += Z[o, r]
                    c = min(max(c, qmin), qmax)
                    q = (c - Z[o, r]) * s if mode == MODE_UINT else c * s
                C[o, r] = c
                if masked and not keep[i, r]:
                    q = q * np.float32(0.0)
            Q[o, r] = q
            E[i, r] = (w - q) / d
        for k in range(i + 1, count):  # rank-1 OBS update of the columns still to come in this block
            u = U1[i, k]
            if u != 0.0:
                for r in range(rows):
                    W1[k, r] -= u * E[i, r]


_ROUND_MAGIC = np.float32(1.5 * 2.0**23)


@njit(cache=True, inline="always")
def _rint(t):  # pragma: no cover - compiled
    """Round a float32 ``|t| < 2**22`` to nearest, ties to even (as ``torch.round``): adding and removing
    1.5 * 2**23 leaves no fraction bits, and float32 addition rounds to nearest even. Vectorises, unlike
    a call to ``rintf``; exact for every ``|t| < 2**22`` (codes here are at most 10 * 2**7 in size)."""
    return (t + _ROUND_MAGIC) - _ROUND_MAGIC


@njit(cache=True)
def grid_errors(x, ratios, amax, xmin, xmax, mode, qmin, qmax, max_level, mids, lv, err):  # pragma: no cover
    """Squared rounding error ``err[g, k]`` (float64) of group ``x[g]`` on its grid at clipping ratio
    ``ratios[g, k]``: the scale (and zero point) of :func:`pvq.apply._scales._params_at_ratio` and the
    rounding of ``quantize_codes``/``dequantize_codes``, all in float32 as there; only the sum of squares
    over the group is accumulated in float64 (torch sums in float32).

    ``x`` (G, n) float32; ``ratios`` (G, K) float32; ``amax``/``xmin``/``xmax`` (G,) float32; ``mode`` one of
    ``MODE_INT``/``MODE_UINT``/``MODE_LEVELS``; ``err`` (G, K) float64, written.
    """
    G, n = x.shape
    tiny = np.float32(2.0**-24)
    buf = np.empty(n, dtype=np.float32)  # rounding errors of one group at one ratio
    for gi in range(G):
        for k in range(ratios.shape[1]):
            p = ratios[gi, k]
            z = np.float32(0.0)
            if mode == MODE_UINT:
                lo = xmin[gi] * p
                hi = xmax[gi] * p
                s = max((hi - lo) / qmax, tiny)
                z = min(max(np.rint(-lo / s), qmin), qmax)
            else:
                s = max(amax[gi] * p / max_level, tiny)
            if mode == MODE_LEVELS:
                for j in range(n):
                    v = x[gi, j]
                    buf[j] = lv[np.searchsorted(mids, v / s)] * s - v
            elif mode == MODE_UINT:
                for j in range(n):
                    v = x[gi, j]
                    buf[j] = (min(max(_rint(v / s) + z, qmin), qmax) - z) * s - v
            else:
                for j in range(n):
                    v = x[gi, j]
                    buf[j] = min(max(_rint(v / s), qmin), qmax) * s - v
            # sum of squares in float64 with 4 partial sums (the serial sum would be latency-bound)
            a0 = a1 = a2 = a3 = 0.0
            j = 0
            while j + 4 <= n:
                e0, e1 = np.float64(buf[j]), np.float64(buf[j + 1])
                e2, e3 = np.float64(buf[j + 2]), np.float64(buf[j + 3])
                a0 += e0 * e0
                a1 += e1 * e1
                a2 += e2 * e2
                a3 += e3 * e3
                j += 4
            while j < n:
                e0 = np.float64(buf[j])
                a0 += e0 * e0
                j += 1
            acc = (a0 + a1) + (a2 + a3)
            err[gi, k] = acc
