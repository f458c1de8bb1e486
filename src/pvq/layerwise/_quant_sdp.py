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

import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pvq.layerwise._quant_kernels import one_opt
from pvq.layerwise._result import SolveResult, row_error

__all__ = [
    "SdpSolution",
    "SdpFailed",
    "SdpCost",
    "sdp_cost",
    "sdp_skip_reason",
    "solve_sdp",
    "sdp_bound_result",
    "quant_sdp_bound",
    "quant_sdp_rounding",
]


# Cost of the relaxation with CVXPY + Clarabel (interior point on the lifted (n+1)x(n+1) PSD matrix,
# m = (n+1)(n+2)/2 unknowns, dense KKT blocks of m x m). Measured with Clarabel 0.11.1 / CVXPY 1.9.3 on the
# project's 2-core machine (random Gram, 4 bits, no box; benchmarks/bench_sdp_cost.py measures it again):
# n = 50, 60, 70 took 1.9, 6.2, 19 s and 95, 187, 335 MB above the import baseline, i.e. about
# 1.0e-9 m^3 s and 52 m^2 bytes. At n = 400 a single allocation of 8 m^2 bytes (52 GB) aborts the process.
# Re-measured by the benchmark at n = 40, 50, 60: memory 1.09, 1.00, 0.97x the estimate; time 3-17x it
# on a machine shared by many processes (load ~14 on 2 cores), which is why the solvers also get the
# time limit itself.
SDP_SECONDS_PER_M3 = 1.1e-9
SDP_BYTES_PER_M2 = 56.0
SDP_BOX_FACTOR = 1.5  # the box adds n linear and n quadratic rows: about 1.3x the time at n = 40


@dataclass(frozen=True)
class SdpCost:
    """Predicted cost of one relaxation of size ``n``: ``seconds`` and peak ``bytes`` (see the
    calibration above; a rough, machine-dependent estimate meant to refuse hopeless sizes early)."""

    n: int
    seconds: float
    bytes: float


def sdp_cost(n: int, box: bool = False) -> SdpCost:
    """Estimated wall time (s) and memory (bytes) of :func:`solve_sdp` for ``n`` weights."""
    m = (n + 1) * (n + 2) / 2.0
    f = SDP_BOX_FACTOR if box else 1.0
    return SdpCost(int(n), f * SDP_SECONDS_PER_M3 * m**3, f * SDP_BYTES_PER_M2 * m**2)


def default_sdp_max_bytes() -> float:
    """Half the physical memory of this machine (``inf`` where the OS does not say)."""
    import os

    try:
        return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return float("inf")


def sdp_skip_reason(
    n: int, time_limit: float | None, max_bytes: float | None = None, box: bool = False
) -> str | None:
    """Why an SDP of size ``n`` should not be started (``None``: go ahead): its estimated memory exceeds
    ``max_bytes`` (default: :func:`default_sdp_max_bytes`) or its estimated time exceeds ``time_limit``."""
    c = sdp_cost(n, box=box)
    cap = default_sdp_max_bytes() if max_bytes is None else float(max_bytes)
    if c.bytes > cap:
        return (
            f"SDP at n = {n} needs about {c.bytes / 1e9:.3g} GB (estimate), over the {cap / 1e9:.3g} GB allowed"
        )
    if time_limit is not None and c.seconds > time_limit:
        return f"SDP at n = {n} needs about {c.seconds:.3g} s (estimate), over the {time_limit:.3g} s left of the time limit"
    return None


@dataclass(frozen=True)
class SdpSolution:
    """Relaxation optimum: ``bound`` (output-error units, ``scale^2 f``), ``y`` (n,) and ``Y`` (n, n) in
    shifted integer units, the shift ``a`` (n,), the solver used and its wall time in seconds.

    ``status``: ``optimal`` (solved to the solver's tolerance: ``bound`` is a lower bound) or
    ``inaccurate`` (the solver stopped short, e.g. SCS ``optimal_inaccurate`` or a time limit: ``bound``
    is the relaxation value it reached and certifies nothing; ``y``/``Y`` are still usable for rounding).
    ``notes``: the solver statuses and warnings met on the way.
    """

    bound: float
    y: np.ndarray
    Y: np.ndarray
    a: np.ndarray
    solver: str
    seconds: float
    status: str = "optimal"
    notes: tuple[str, ...] = ()


class SdpFailed(RuntimeError):
    """No SDP solver returned a solution; the message names each solver's failure."""


SDP_SOLVERS = ("CLARABEL", "SCS")
_TIME_OPTION = {"CLARABEL": "time_limit", "SCS": "time_limit_secs"}


def solve_sdp(
    G: np.ndarray,
    w0: np.ndarray,
    scale: float,
    bits: int,
    box: bool = False,
    time_limit: float | None = None,
    solvers: tuple[str, ...] = SDP_SOLVERS,
    solver_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> SdpSolution:
    """Solve the relaxation with CVXPY + Clarabel (then SCS if Clarabel does not solve it to tolerance).
    ``G`` (n, n), ``w0`` (n,); ``time_limit`` (s) is passed to each solver (what is left of it).
    ``solvers``: CVXPY solver names, tried in order; ``solver_options``: name -> extra CVXPY options.

    Raises :class:`SdpFailed` naming every solver's failure when none returns a solution.
    """
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
    tried: list[str] = []
    fallback: tuple[str, float, np.ndarray] | None = None  # an inaccurate solution, kept for rounding
    for solver in solvers:
        opts = dict((solver_options or {}).get(solver, {}))
        if time_limit is not None:
            left = time_limit - (time.perf_counter() - t0)
            if left <= 0:
                tried.append(f"{solver}: not started, time limit reached")
                break
            opts[_TIME_OPTION.get(solver, "time_limit")] = left
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                prob.solve(solver=solver, **opts)
            except cp.error.SolverError as exc:  # solver missing, or it reported a numerical failure
                tried.append(f"{solver}: {str(exc).splitlines()[0] if str(exc) else 'SolverError'}")
                continue
        warned = "; ".join(dict.fromkeys(str(w.message).split(". ")[0].splitlines()[0] for w in caught))
        tried.append(f"{solver}: {prob.status}" + (f" ({warned})" if warned else ""))
        if prob.value is None or M.value is None:
            continue
        if prob.status == "optimal":
            return _solution(M.value, float(prob.value), n, norm, scale, a, solver, "optimal", t0, tried)
        if fallback is None:
            fallback = (solver, float(prob.value), np.array(M.value))
    if fallback is not None:
        solver, value, Mv = fallback
        return _solution(Mv, value, n, norm, scale, a, solver, "inaccurate", t0, tried)
    raise SdpFailed("SDP relaxation failed: " + "; ".join(tried or ["no solver given"]))


def _solution(
    Mv: np.ndarray,
    value: float,
    n: int,
    norm: float,
    scale: float,
    a: np.ndarray,
    solver: str,
    status: str,
    t0: float,
    tried: list[str],
) -> SdpSolution:
    Mv = np.asarray(Mv)
    bound = max(0.0, value) * norm * scale**2
    return SdpSolution(
        bound, Mv[:n, n].copy(), Mv[:n, :n].copy(), a, solver, time.perf_counter() - t0, status, tuple(tried)
    )


def sdp_bound_result(s: SdpSolution) -> SolveResult:
    """A bound solver's :class:`SolveResult` from a relaxation: the bound when it is certified
    (status ``optimal``); otherwise no value and no bound, status ``inaccurate``, the reached value in
    ``notes``."""
    if s.status == "optimal":
        return SolveResult(s.bound, s.bound, 0.0, s.seconds, "optimal", None, notes=(f"solver {s.solver}",))
    return SolveResult(
        math.nan,
        math.nan,
        math.nan,
        s.seconds,
        "inaccurate",
        None,
        notes=(
            f"solver {s.solver} did not reach its tolerance (relaxation value {s.bound:.6g}, not a "
            "certified bound)",
            *s.notes,
        ),
    )


def quant_sdp_bound(
    G: np.ndarray, w0: np.ndarray, scale: float, bits: int, box: bool = False, time_limit: float | None = None
) -> SolveResult:
    """The SDP lower bound as a :class:`SolveResult` (``value = bound``, no solution); status
    ``inaccurate`` and no value when the relaxation was not solved to tolerance."""
    return sdp_bound_result(solve_sdp(G, w0, scale, bits, box=box, time_limit=time_limit))


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
    1-opt each; keep the best (the SDP mean itself is tried first). Carries the SDP bound as ``bound``
    when the relaxation was solved to tolerance (else ``nan``)."""
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
    secs = time.perf_counter() - t0 + (s.seconds if sdp is None else 0.0)
    if s.status != "optimal":  # the relaxation was not solved to tolerance: no bound to carry
        return SolveResult(value, math.nan, math.nan, secs, "heuristic", w, notes=("SDP inaccurate: no bound",))
    bound = min(s.bound, value)
    gap = (value - bound) / value if value > 0 else 0.0
    return SolveResult(value, bound, gap, secs, "heuristic", w)
