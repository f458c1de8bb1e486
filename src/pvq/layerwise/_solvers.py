"""The solver registry and :func:`solve_row`: every solver of a method on one row, as rows of results.

Pruning: ``magnitude`` (the paper's heuristic), ``obs`` (OBS/SparseGPT-style greedy), ``swap`` (1-swap
local search), ``exact`` (branch-and-bound). Quantization: ``rtn``, ``gptq``, ``sdp_round`` (Park &
Boyd's randomized rounding + 1-opt, the paper's heuristic), ``sdp`` (the paper's lower bound, eq. 6),
``sdp_box`` (the same with the integer box, tighter), ``exact`` (sphere decoding).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pvq.layerwise._linalg import check_row, prune_count, signal_power
from pvq.layerwise._prune_bnb import prune_exact
from pvq.layerwise._prune_magnitude import prune_magnitude
from pvq.layerwise._prune_obs import prune_obs
from pvq.layerwise._prune_swap import prune_swap
from pvq.layerwise._quant_heuristics import quant_gptq, quant_rtn
from pvq.layerwise._quant_sdp import SdpSolution, quant_sdp_rounding, solve_sdp
from pvq.layerwise._quant_sphere import quant_exact
from pvq.layerwise._result import SolveResult
from pvq.metrics import snr_db

__all__ = ["SolverSpec", "SOLVERS", "DEFAULT_SOLVERS", "solver_names", "solve_row", "result_rows"]


@dataclass(frozen=True)
class SolverSpec:
    """A solver's name, method (``prune``/``quant``) and kind (``heuristic``/``bound``/``exact``)."""

    name: str
    method: str
    kind: str


SOLVERS: dict[str, tuple[SolverSpec, ...]] = {
    "prune": (
        SolverSpec("magnitude", "prune", "heuristic"),
        SolverSpec("obs", "prune", "heuristic"),
        SolverSpec("swap", "prune", "heuristic"),
        SolverSpec("exact", "prune", "exact"),
    ),
    "quant": (
        SolverSpec("rtn", "quant", "heuristic"),
        SolverSpec("gptq", "quant", "heuristic"),
        SolverSpec("sdp_round", "quant", "heuristic"),
        SolverSpec("sdp", "quant", "bound"),
        SolverSpec("sdp_box", "quant", "bound"),
        SolverSpec("exact", "quant", "exact"),
    ),
}
# without the SDP (about a second per row): what `pvq layers` runs unless told otherwise
DEFAULT_SOLVERS: dict[str, tuple[str, ...]] = {
    "prune": ("magnitude", "obs", "swap", "exact"),
    "quant": ("rtn", "gptq", "exact"),
}


def solver_names(method: str) -> list[str]:
    if method not in SOLVERS:
        raise ValueError(f"method must be 'prune' or 'quant', got {method!r}")
    return [s.name for s in SOLVERS[method]]


def _spec(method: str, name: str) -> SolverSpec:
    for s in SOLVERS[method]:
        if s.name == name:
            return s
    raise ValueError(f"unknown {method} solver {name!r}; known: {', '.join(solver_names(method))}")


def solve_row(
    G: np.ndarray,
    w0: np.ndarray,
    method: str,
    bits: int,
    scale: float | None = None,
    solvers: Sequence[str] | None = None,
    time_limit: float | None = 60.0,
    seed: int = 0,
) -> dict[str, SolveResult]:
    """Run ``solvers`` (default: all of ``method``) on one row. ``G`` (n, n) float64 PSD, ``w0`` (n,).

    Pruning keeps ``k = floor(n * bits / 16)`` weights; quantization needs ``scale`` (> 0) and uses the
    symmetric signed ``bits``-bit grid. Exact solvers get the best heuristic found here as warm start.
    """
    names = list(solvers) if solvers is not None else solver_names(method)
    for name in names:
        _spec(method, name)
    G, w0 = check_row(G, w0)
    out: dict[str, SolveResult] = {}
    if method == "prune":
        k = prune_count(w0.shape[0], bits)
        fns = {"magnitude": prune_magnitude, "obs": prune_obs, "swap": prune_swap}
        for name in names:
            if name in fns:
                out[name] = fns[name](G, w0, k)
        if "exact" in names:
            ws = min(out.values(), key=lambda r: r.value).solution if out else None
            out["exact"] = prune_exact(G, w0, k, time_limit=time_limit, warm_start=ws)
        return {n: out[n] for n in names}
    if scale is None or not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"quantization needs a positive finite scale, got {scale!r}")
    sdp: SdpSolution | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            if name == "rtn":
                out[name] = quant_rtn(G, w0, scale, bits)
            elif name == "gptq":
                out[name] = quant_gptq(G, w0, scale, bits)
            elif name in ("sdp", "sdp_round"):
                if sdp is None:
                    sdp = solve_sdp(G, w0, scale, bits)
                if name == "sdp":
                    out[name] = SolveResult(
                        sdp.bound, sdp.bound, 0.0, sdp.seconds, "optimal", None, notes=(sdp.solver,)
                    )
                else:
                    r = quant_sdp_rounding(G, w0, scale, bits, seed=seed, sdp=sdp)
                    out[name] = SolveResult(
                        r.value, r.bound, r.gap, r.seconds + sdp.seconds, r.status, r.solution
                    )
            elif name == "sdp_box":
                s2 = solve_sdp(G, w0, scale, bits, box=True)
                out[name] = SolveResult(
                    s2.bound, s2.bound, 0.0, s2.seconds, "optimal", None, notes=(s2.solver,)
                )
    if "exact" in names:
        heur = [r for n, r in out.items() if r.solution is not None]
        ws = min(heur, key=lambda r: r.value).solution if heur else None
        out["exact"] = quant_exact(G, w0, scale, bits, time_limit=time_limit, warm_start=ws)
    return {n: out[n] for n in names}


def result_rows(
    results: dict[str, SolveResult],
    G: np.ndarray,
    w0: np.ndarray,
    method: str,
    bits: int,
    layer: str = "",
    chunk: int = 0,
    row: int = 0,
) -> list[dict[str, Any]]:
    """DESIGN.md layer rows (``layer, chunk, bits, method, solver, snr_db, kind, seconds``) plus ``row``,
    ``status``, ``gap``, ``error`` (``||X(w - w0)||^2``) and ``signal`` (``||X w0||^2``)."""
    sig = signal_power(G, w0)
    rows = []
    for name, r in results.items():
        spec = _spec(method, name)
        rows.append(
            {
                "layer": layer,
                "chunk": int(chunk),
                "bits": int(bits),
                "method": method,
                "solver": name,
                "snr_db": snr_db(sig, r.value),
                "kind": spec.kind,
                "seconds": float(r.seconds),
                "row": int(row),
                "status": r.status,
                "gap": None if math.isnan(r.gap) else float(r.gap),
                "error": float(r.value),
                "signal": sig,
                "nodes": int(r.nodes),
                "notes": list(r.notes),
            }
        )
    return rows
