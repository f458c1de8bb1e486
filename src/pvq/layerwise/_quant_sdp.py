"""The paper's SDP lower bound for post-training quantization (eq. 5-6, after Park & Boyd 2018) and
Park & Boyd's randomized rounding of the SDP solution followed by 1-opt.

In integer units ``c = w0 / scale`` and the objective ``f(z) = (z - c)^T G (z - c)``. Shift by
``a = floor(c)`` so that ``y = z - a`` and the integrality of ``y`` is relaxed to ``y_i (y_i - 1) >= 0``
(valid for every integer); lifting ``Y ~ y y^T`` gives the semidefinite relaxation (Shor)::

    min  tr(G Y) - 2 (G (c - a))^T y + (c - a)^T G (c - a)
    s.t. [[Y, y], [y^T, 1]] >= 0,   Y_ii >= y_i

whose optimum lower-bounds ``f`` over all integers; it is the dual of the paper's eq. 6. The integer
box is ignored in the paper's bound (``box=False``); ``box=True`` adds ``lo <= z <= hi`` and
``(z_i - lo)(hi - z_i) >= 0`` (a tighter, still valid bound).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from pvq.layerwise._quant_kernels import one_opt
from pvq.layerwise._result import SolveResult, row_error

__all__ = ["SdpSolution", "solve_sdp", "quant_sdp_bound", "quant_sdp_rounding"]


@dataclass(frozen=True)
class SdpSolution:
    """Relaxation optimum: ``bound`` (output-error units, ``scale^2 f``), ``y`` (n,) and ``Y`` (n, n) in
    shifted integer units, the shift ``a`` (n,), the solver used and its wall time in seconds."""

    bound: float
    y: np.ndarray
    Y: np.ndarray
    a: np.ndarray
    solver: str
    seconds: float


def solve_sdp(G: np.ndarray, w0: np.ndarray, scale: float, bits: int, box: bool = False) -> SdpSolution:
    """Solve the relaxation with CVXPY + Clarabel (SCS if Clarabel fails). ``G`` (n, n), ``w0`` (n,)."""
    import cvxpy as cp

    t0 = time.perf_counter()
    G = np.asarray(G, dtype=np.float64)
    n = G.shape[0]
    c = np.asarray(w0, dtype=np.float64) / scale
    a = np.floor(c)
    norm = float(np.trace(G)) / n or 1.0
    P = (G + G.T) / (2.0 * norm)
    d = c - a
    q = P @ d
    M = cp.Variable((n + 1, n + 1), PSD=True)
    Y, y = M[:n, :n], M[:n, n]
    cons = [M[n, n] == 1, cp.diag(Y) >= y]
    if box:
        lo, hi = -(2.0 ** (bits - 1)) - a, 2.0 ** (bits - 1) - 1 - a
        cons += [y >= lo, y <= hi, cp.diag(Y) <= cp.multiply(lo + hi, y) - lo * hi]
    obj = cp.Minimize(cp.trace(P @ Y) - 2 * q @ y + float(d @ P @ d))
    prob = cp.Problem(obj, cons)
    used = None
    for solver in ("CLARABEL", "SCS"):
        try:
            prob.solve(solver=solver)
        except Exception:  # solver missing or numerical failure: try the next one
            continue
        if prob.status in ("optimal", "optimal_inaccurate") and prob.value is not None:
            used = solver if prob.status == "optimal" else f"{solver} (inaccurate)"
            break
    if used is None:
        raise RuntimeError(f"SDP relaxation failed (status {prob.status})")
    Mv = np.asarray(M.value)
    bound = max(0.0, float(prob.value)) * norm * scale**2
    return SdpSolution(bound, Mv[:n, n].copy(), Mv[:n, :n].copy(), a, used, time.perf_counter() - t0)


def quant_sdp_bound(G: np.ndarray, w0: np.ndarray, scale: float, bits: int, box: bool = False) -> SolveResult:
    """The SDP lower bound as a :class:`SolveResult` (``value = bound``, no solution)."""
    s = solve_sdp(G, w0, scale, bits, box=box)
    return SolveResult(s.bound, s.bound, 0.0, s.seconds, "optimal", None, notes=(f"solver {s.solver}",))


def quant_sdp_rounding(
    G: np.ndarray,
    w0: np.ndarray,
    scale: float,
    bits: int,
    samples: int = 64,
    seed: int = 0,
    sdp: SdpSolution | None = None,
) -> SolveResult:
    """Park & Boyd's heuristic: draw ``samples`` points from N(y, Y - y y^T), round, clip to the box,
    1-opt each; keep the best (the SDP mean itself is tried first). Carries the SDP bound as ``bound``."""
    t0 = time.perf_counter()
    G = np.ascontiguousarray(G, dtype=np.float64)
    s = sdp if sdp is not None else solve_sdp(G, w0, scale, bits)
    n = G.shape[0]
    lo, hi = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    c = np.asarray(w0, dtype=np.float64) / scale
    S = s.Y - np.outer(s.y, s.y)
    evals, evecs = np.linalg.eigh((S + S.T) / 2)
    F = evecs * np.sqrt(np.clip(evals, 0.0, None))
    rng = np.random.default_rng(seed)
    best_z, best_v = None, np.inf
    draws = [np.zeros(n)] + [F @ rng.standard_normal(n) for _ in range(samples)]
    for e in draws:
        z = np.clip(np.round(s.a + s.y + e), lo, hi)
        z = one_opt(G, c, z, lo, hi, 100)
        v = float((z - c) @ G @ (z - c))
        if v < best_v:
            best_z, best_v = z.copy(), v
    w = scale * best_z
    value = row_error(G, w0, w)
    bound = min(s.bound, value)
    gap = (value - bound) / value if value > 0 else 0.0
    secs = time.perf_counter() - t0 + (s.seconds if sdp is None else 0.0)
    return SolveResult(value, bound, gap, secs, "heuristic", w)
