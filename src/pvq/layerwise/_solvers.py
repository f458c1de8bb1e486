"""The solver registry and :func:`solve_row`: every solver of a method on one row, as rows of results.

Pruning: ``magnitude`` (the paper's heuristic), ``obs`` (OBS/SparseGPT-style greedy), ``swap`` (1-swap
local search), ``exact`` (branch-and-bound). Quantization: ``rtn``, ``gptq``, ``sdp_round`` (Park &
Boyd's randomized rounding + 1-opt, the paper's heuristic), ``sdp`` (the paper's lower bound, eq. 6),
``sdp_box`` (the same with the integer box, tighter), ``exact`` (sphere decoding).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pvq.layerwise._linalg import check_row, prune_count, signal_power
from pvq.layerwise._prune_bnb import prune_exact
from pvq.layerwise._prune_magnitude import prune_magnitude
from pvq.layerwise._prune_obs import prune_obs
from pvq.layerwise._prune_swap import prune_swap
from pvq.layerwise._quant_heuristics import quant_gptq, quant_rtn
from pvq.layerwise._quant_sdp import (
    SdpFailed,
    SdpSolution,
    quant_sdp_rounding,
    sdp_bound_result,
    sdp_skip_reason,
    solve_sdp,
)
from pvq.layerwise._quant_sphere import quant_exact
from pvq.layerwise._result import SolveResult
from pvq.metrics import snr_db

__all__ = [
    "SolverSpec",
    "SOLVERS",
    "DEFAULT_SOLVERS",
    "solver_names",
    "sdp_skips",
    "solve_row",
    "result_rows",
]


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


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.perf_counter())


def _skipped(reason: str) -> SolveResult:
    return SolveResult(math.nan, math.nan, math.nan, 0.0, "skipped", None, notes=(reason,))


def sdp_skips(
    n: int, names: Sequence[str], time_limit: float | None, max_bytes: float | None = None
) -> dict[str, str]:
    """The SDP solvers of ``names`` that should not start at size ``n`` (estimated memory over
    ``max_bytes`` or time over ``time_limit``), each with the reason; see :func:`sdp_skip_reason`."""
    out: dict[str, str] = {}
    plain = sdp_skip_reason(n, time_limit, max_bytes) if {"sdp", "sdp_round"} & set(names) else None
    for name in names:
        if name in ("sdp", "sdp_round") and plain:
            out[name] = plain
        elif name == "sdp_box" and (why := sdp_skip_reason(n, time_limit, max_bytes, box=True)):
            out[name] = why
    return out


def solve_row(
    G: np.ndarray,
    w0: np.ndarray,
    method: str,
    bits: int,
    scale: float | None = None,
    solvers: Sequence[str] | None = None,
    time_limit: float | None = 60.0,
    seed: int = 0,
    sdp_max_bytes: float | None = None,
) -> dict[str, SolveResult]:
    """Run ``solvers`` (default: all of ``method``) on one row. ``G`` (n, n) float64 PSD, ``w0`` (n,).

    Pruning keeps ``k = floor(n * bits / 16)`` weights; quantization uses the symmetric signed ``bits``-bit grid
    with step ``scale`` (> 0); ``scale=None`` (the default) takes the MSE-optimal scale of this row,
    ``layer_scale(w0, bits)`` (the step minimising ``||w0 - s * clip(round(w0 / s))||^2``, not the output
    error), and every quantization result says so in its ``notes``. Pass ``layer_scale(W, bits)`` of the whole
    layer ``W`` for one scale per tensor, as the paper does. Exact solvers get the best heuristic found here as warm start.
    ``time_limit`` (s, ``None``: none) covers the whole row: each solver that can stop early (swap search,
    SDP, the exact searches and their warm starts) gets what is left of it. An SDP solver whose estimated
    memory exceeds ``sdp_max_bytes`` (default half the machine's memory) or whose estimated time exceeds
    the time left is not started: its result has status ``skipped`` and the reason in ``notes`` (so has
    one whose solvers all failed, each named); one not solved to tolerance has status ``inaccurate`` and
    no bound (see :func:`sdp_bound_result`).
    """
    t0 = time.perf_counter()
    deadline = None if time_limit is None else t0 + time_limit
    names = list(solvers) if solvers is not None else solver_names(method)
    for name in names:
        _spec(method, name)
    G, w0 = check_row(G, w0)
    out: dict[str, SolveResult] = {}
    if method == "prune":
        k = prune_count(w0.shape[0], bits)
        fns = {"magnitude": prune_magnitude, "obs": prune_obs}
        for name in names:
            if name in fns:
                out[name] = fns[name](G, w0, k)
            elif name == "swap":
                out[name] = prune_swap(G, w0, k, time_limit=_left(deadline))
        if "exact" in names:
            ws = min(out.values(), key=lambda r: r.value).solution if out else None
            out["exact"] = prune_exact(
                G, w0, k, time_limit=_left(deadline), warm_start=ws, heuristic="swap" not in out
            )
        return {n: out[n] for n in names}
    scale_note = ""
    if scale is None:
        if not np.any(w0):
            raise ValueError("quantization: w0 is all zero, so it has no MSE-optimal scale; pass scale=")
        from pvq.layerwise._range import layer_scale

        scale = layer_scale(w0, bits)
        scale_note = f"scale {scale:.6g}: the row's MSE-optimal {bits}-bit scale (layer_scale(w0, bits)), none was given"
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"quantization needs a positive finite scale, got {scale!r}")
    if scale_note:
        return {
            n: replace(r, notes=(*r.notes, scale_note))
            for n, r in solve_row(G, w0, method, bits, scale, names, _left(deadline), seed, sdp_max_bytes).items()
        }
    sdp: SdpSolution | str | None = None  # the relaxation, or why it failed
    skips = sdp_skips(w0.shape[0], names, _left(deadline), sdp_max_bytes)
    for name in names:
        if name in skips:
            out[name] = _skipped(skips[name])
        elif name == "rtn":
            out[name] = quant_rtn(G, w0, scale, bits)
        elif name == "gptq":
            out[name] = quant_gptq(G, w0, scale, bits)
        elif name in ("sdp", "sdp_round"):
            if sdp is None:
                try:
                    sdp = solve_sdp(G, w0, scale, bits, time_limit=_left(deadline))
                except SdpFailed as exc:
                    sdp = str(exc)
            if isinstance(sdp, str):
                out[name] = _skipped(sdp)
            elif name == "sdp":
                out[name] = sdp_bound_result(sdp)
            else:
                r = quant_sdp_rounding(G, w0, scale, bits, seed=seed, sdp=sdp)
                out[name] = replace(r, seconds=r.seconds + sdp.seconds)
        elif name == "sdp_box" and (late := sdp_skip_reason(w0.shape[0], _left(deadline), sdp_max_bytes, True)):
            out[name] = _skipped(late)  # the plain SDP used up the time it needed
        elif name == "sdp_box":
            try:
                box = solve_sdp(G, w0, scale, bits, box=True, time_limit=_left(deadline))
                out[name] = sdp_bound_result(box)
            except SdpFailed as exc:
                out[name] = _skipped(str(exc))
    if "exact" in names:
        heur = [r for n, r in out.items() if r.solution is not None]
        ws = min(heur, key=lambda r: r.value).solution if heur else None
        out["exact"] = quant_exact(G, w0, scale, bits, time_limit=_left(deadline), warm_start=ws)
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
