"""Quantization heuristics for one row: round-to-nearest and GPTQ-style sequential rounding, with 1-opt.

Integer problem (paper eq. 4): ``min_z ||X(scale z - w0)||^2``, ``z`` integer in ``[qmin, qmax]``.
"""

from __future__ import annotations

import time

import numpy as np

from pvq.layerwise._linalg import safe_cholesky
from pvq.layerwise._quant_kernels import one_opt
from pvq.layerwise._result import SolveResult, row_error

__all__ = ["quant_rtn", "quant_gptq", "gptq_round", "polish"]


def _box(bits: int) -> tuple[float, float]:
    return float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)


def polish(G: np.ndarray, w0: np.ndarray, z: np.ndarray, scale: float, bits: int) -> np.ndarray:
    """1-opt (coordinate descent over integers) from ``z``; returns the improved integers (n,)."""
    lo, hi = _box(bits)
    z = np.array(z, dtype=np.float64)
    c = np.asarray(w0, dtype=np.float64) / scale
    return one_opt(np.ascontiguousarray(G, dtype=np.float64), c, z, lo, hi, 100)


def quant_rtn(G: np.ndarray, w0: np.ndarray, scale: float, bits: int, one_opt: bool = False) -> SolveResult:
    """Round-to-nearest with clipping (``z = clip(round(w0 / scale))``), optionally followed by 1-opt."""
    t0 = time.perf_counter()
    lo, hi = _box(bits)
    z = np.clip(np.round(np.asarray(w0, dtype=np.float64) / scale), lo, hi)
    if one_opt:
        z = polish(G, w0, z, scale, bits)
    w = scale * z
    return SolveResult(row_error(G, w0, w), np.nan, np.nan, time.perf_counter() - t0, "heuristic", w)


def gptq_round(
    G: np.ndarray, c: np.ndarray, lo: float, hi: float, order: np.ndarray | None = None
) -> np.ndarray:
    """GPTQ / Babai nearest-plane rounding of ``c`` (integer units) in ``order`` (default: descending
    ``diag G``, GPTQ's act-order): round one weight, spread its error over the rest through the Cholesky
    factor of ``G^-1``. Returns integers (n,) in the original order."""
    n = c.shape[0]
    order = np.argsort(-np.diag(G), kind="stable") if order is None else np.asarray(order)
    Gp = G[np.ix_(order, order)]
    L, _ = safe_cholesky(Gp)
    Linv = np.linalg.solve(L, np.eye(n))
    Hinv = Linv.T @ Linv
    U = np.linalg.cholesky(Hinv + 1e-300 * np.eye(n)).T  # Hinv = U^T U, U upper
    w = c[order].astype(np.float64).copy()
    z = np.empty(n)
    for i in range(n):
        q = min(max(np.floor(w[i] + 0.5), lo), hi)
        z[i] = q
        e = (w[i] - q) / U[i, i]
        w[i + 1 :] -= e * U[i, i + 1 :]
    out = np.empty(n)
    out[order] = z
    return out


def quant_gptq(G: np.ndarray, w0: np.ndarray, scale: float, bits: int, one_opt: bool = True) -> SolveResult:
    """GPTQ-style sequential rounding (act-order), then 1-opt."""
    t0 = time.perf_counter()
    lo, hi = _box(bits)
    G = np.asarray(G, dtype=np.float64)
    c = np.asarray(w0, dtype=np.float64) / scale
    try:
        z = gptq_round(G, c, lo, hi)
    except np.linalg.LinAlgError:
        z = np.clip(np.round(c), lo, hi)
    if one_opt:
        z = polish(G, w0, z, scale, bits)
    w = scale * z
    return SolveResult(row_error(G, w0, w), np.nan, np.nan, time.perf_counter() - t0, "heuristic", w)
