"""Solve every row of one chunk at several bit-widths with both methods: the unit of work of a layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pvq.layerwise._problem import ChunkProblem
from pvq.layerwise._solvers import DEFAULT_SOLVERS, result_rows, solve_row

__all__ = ["solve_problem"]


def solve_problem(
    problem: ChunkProblem,
    bits: Sequence[int],
    methods: Sequence[str] = ("prune", "quant"),
    solvers: Mapping[str, Sequence[str]] | None = None,
    time_limit: float | None = 60.0,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows (see :func:`pvq.layerwise.result_rows`) for every row of ``problem`` x ``bits`` x ``methods``.

    ``solvers``: method -> solver names (default :data:`DEFAULT_SOLVERS`); ``time_limit`` in seconds per
    row and method, all its solvers and warm starts included (see :func:`solve_row`). Each row also carries ``row_id`` (the output channel).
    """
    solvers = dict(DEFAULT_SOLVERS) if solvers is None else dict(solvers)
    rows: list[dict[str, Any]] = []
    for b in bits:
        for method in methods:
            names = solvers.get(method, DEFAULT_SOLVERS[method])
            if not names:
                continue
            scale = problem.scales.get(int(b)) if method == "quant" else None
            if method == "quant" and scale is None:
                raise ValueError(
                    f"chunk {problem.chunk} of {problem.layer}: no quantization scale for {b} bits"
                )
            for i, w0 in enumerate(problem.W):
                res = solve_row(
                    problem.G,
                    w0,
                    method,
                    int(b),
                    scale=scale,
                    solvers=names,
                    time_limit=time_limit,
                    seed=seed + i,
                )
                rr = result_rows(
                    res, problem.G, w0, method, int(b), layer=problem.layer, chunk=problem.chunk, row=i
                )
                rid = int(problem.row_ids[i]) if problem.row_ids is not None else i
                for r in rr:
                    r["row_id"] = rid
                    r["n"] = problem.n
                rows.extend(rr)
    return rows


def solve_chunk_task(
    task: tuple[ChunkProblem, Sequence[int], Mapping[str, Sequence[str]], float | None, int],
) -> list[dict[str, Any]]:
    """Picklable unit of work for :mod:`pvq.parallel`: ``(problem, bits, solvers, time_limit, seed)``."""
    problem, bits, solvers, time_limit, seed = task
    methods = [m for m in ("prune", "quant") if solvers.get(m)]
    return solve_problem(problem, bits, methods=methods, solvers=solvers, time_limit=time_limit, seed=seed)


def chunk_summary(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Chunk-level SNR per (layer, chunk, bits, method, solver): ``10 log10(sum signal / sum error)`` over
    the chunk's rows (the paper's per-chunk points), with the worst status and total seconds. A solver
    with any row without a value (status ``skipped``, or ``inaccurate`` for a bound: no certified bound)
    gets no chunk summary: a value or bound pooled over part of the rows would be neither."""
    import math

    missing = {
        (r["layer"], r["chunk"], r["bits"], r["method"], r["solver"])
        for r in rows
        if r.get("error") is None or not math.isfinite(r["error"])
    }
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        if (r["layer"], r["chunk"], r["bits"], r["method"], r["solver"]) in missing:
            continue
        key = (r["layer"], r["chunk"], r["bits"], r["method"], r["solver"])
        g = groups.setdefault(
            key, {"signal": 0.0, "error": 0.0, "seconds": 0.0, "rows": 0, "optimal": 0, "kind": r["kind"]}
        )
        g["signal"] += r["signal"]
        g["error"] += r["error"]
        g["seconds"] += r["seconds"]
        g["rows"] += 1
        g["optimal"] += r["status"] == "optimal"
    out = []
    for (layer, chunk, bits, method, solver), g in sorted(
        groups.items(), key=lambda kv: tuple(map(str, kv[0]))
    ):
        snr = math.inf if g["error"] <= 0 else 10 * math.log10(g["signal"] / g["error"])
        out.append(
            {
                "layer": layer,
                "chunk": chunk,
                "bits": bits,
                "method": method,
                "solver": solver,
                "kind": g["kind"],
                "snr_db": snr,
                "seconds": g["seconds"],
                "rows": g["rows"],
                "proved_optimal": g["optimal"] if g["kind"] == "exact" else None,
            }
        )
    return out
