"""`pvq solve PROBLEM.npz --method prune|quant --bits B`: every solver of a method on every row of a file."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import typer

from pvq._io import atomic_write_text, to_jsonable
from pvq.cli._common import check_seed, fail, print_json_rows

__all__ = ["register", "parse_solvers"]


def parse_solvers(text: str | None, methods: list[str]) -> dict[str, list[str]]:
    """``--solvers``: ``all``, or a comma list of names (``exact,gptq``) or ``method:name`` items."""
    from pvq.layerwise import DEFAULT_SOLVERS, solver_names

    if text is None:
        return {m: list(DEFAULT_SOLVERS[m]) for m in methods}
    if text.strip() == "all":
        return {m: solver_names(m) for m in methods}
    out: dict[str, list[str]] = {m: [] for m in methods}
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        meth, _, name = item.rpartition(":")
        targets = [meth] if meth else [m for m in methods if name in solver_names(m)]
        if meth and meth not in methods:
            fail(f"--solvers: method '{meth}' is not one of {methods}")
        if not targets or any(name not in solver_names(m) for m in targets):
            known = sorted({n for m in methods for n in solver_names(m)})
            fail(f"--solvers: unknown solver '{item}' (known: {', '.join(known)})")
        for m in targets:
            if name not in out[m]:
                out[m].append(name)
    if not any(out.values()):
        fail("--solvers: no solvers given")
    return out


def _warm_up(method: str, bits: int, names: list[str], n: int, time_limit: float) -> float:
    """Run the chosen solvers once on a random problem of the rows' size (capped at 64 inputs, so that the same
    code paths and lazy imports run); returns its wall time in seconds.

    The first solve of a process loads the solvers' compiled (numba, cached) kernels and libraries,
    ~100x a small warm solve: done here, it stays out of every row's ``seconds`` (issue 11 §3).
    """
    import time

    import numpy as np

    from pvq.layerwise import solve_row

    t0 = time.perf_counter()
    m = max(2, min(n, 64))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4 * m, m))
    w = rng.standard_normal(m)
    s = float(np.abs(w).max()) / 2 ** (bits - 1) if method == "quant" else None
    solve_row(x.T @ x, w, method, bits, scale=s, solvers=names, time_limit=min(time_limit, 2.0), seed=0)
    return time.perf_counter() - t0


def _fmt(x: float) -> str:
    if math.isnan(x):  # no value: a skipped solver, or a bound that was not certified (see status)
        return "-"
    return "inf" if math.isinf(x) else f"{x:.2f}"


def register(app: typer.Typer) -> None:
    @app.command("solve", help="Solve a layer problem from a file: every solver of --method on every row.")
    def _cmd(
        problem: Path = typer.Argument(  # noqa: B008
            ...,
            help=".npz with X (samples, n) or G (n, n), rows w (k, n) or (n,), optional scale or scale_<bits>",
        ),
        method: str = typer.Option(..., "--method", help="prune | quant"),
        bits: int = typer.Option(
            ...,
            "--bits",
            help="bit-width b: pruning keeps floor(n b / 16) weights; quantization uses the b-bit grid",
        ),
        solvers: str = typer.Option(
            "all",
            "--solvers",
            help="'all' or a comma list (prune: magnitude,obs,swap,exact; quant: rtn,gptq,sdp_round,sdp,sdp_box,exact)",
        ),
        time_limit: float = typer.Option(
            60.0,
            "--time-limit",
            help="seconds per row, all solvers and warm starts included (exact: then best solution + gap)",
        ),
        json_out: bool = typer.Option(
            False, "--json", help="print a JSON array of rows on stdout and nothing else"
        ),
        out: Path | None = typer.Option(None, "--out", help="also write rows.json into this folder"),  # noqa: B008
        seed: int = typer.Option(0, "--seed", help="seed of the randomized rounding"),
    ) -> None:
        from pvq._progress import enable_progress
        from pvq.layerwise import layer_scale, load_problem_npz, result_rows, sdp_skips, solve_row

        if method not in ("prune", "quant"):
            fail(f"--method: must be prune or quant, got '{method}'")
        if not 1 <= bits <= 16:
            fail(f"--bits: must be in 1..16, got {bits}")
        if not time_limit > 0:  # inf (no limit) is allowed; NaN is not
            fail(f"--time-limit: must be positive, got {time_limit}")
        check_seed(seed)
        names = parse_solvers(solvers, [method])[method]
        if out is not None:  # checked (a folder, writable) before solving, not after
            from pvq._outdir import open_output

            with open_output(out):
                pass
        G, W, scales = load_problem_npz(problem)
        for name, why in sdp_skips(G.shape[0], names, time_limit).items():
            if solvers.strip() != "all":  # asked for by name: refuse rather than run without it
                fail(f"--solvers: {name}: {why}; leave it out or raise --time-limit")
            print(f"pvq solve: skipping {name}: {why}", file=sys.stderr)
        scale = None
        if method == "quant":
            scale = scales.get(f"scale_{bits}", scales.get("scale"))
            if scale is None:
                if not any(W.reshape(-1)):
                    fail(f"{problem}: all weights are zero; give 'scale'")
                scale = layer_scale(W, bits)
                print(
                    f"pvq solve: no scale in {problem}: MSE-optimal per-tensor scale of w at {bits} bits = {scale:.6g}",
                    file=sys.stderr,
                )
        enable_progress(not json_out)
        setup = _warm_up(method, bits, names, int(G.shape[0]), time_limit)
        print(
            f"pvq solve: setup {setup:.3f} s (loading the solvers' compiled kernels; not in the rows' seconds)",
            file=sys.stderr,
        )
        rows = []
        from pvq._progress import progress

        for i in progress(range(W.shape[0]), total=W.shape[0], desc="rows"):
            res = solve_row(
                G, W[i], method, bits, scale=scale, solvers=names, time_limit=time_limit, seed=seed + i
            )
            for r in result_rows(res, G, W[i], method, bits, layer=problem.stem, chunk=0, row=i):
                if scale is not None:
                    r["scale"] = scale
                r["setup_seconds"] = setup
                rows.append(r)
        if out is not None:
            import json

            try:
                atomic_write_text(out / "rows.json", json.dumps(to_jsonable(rows), indent=1))
            except OSError as exc:  # the solves are not lost: the rows go to stdout, then exit 2
                print_json_rows(rows)
                fail(
                    f"--out: cannot write {out / 'rows.json'} ({exc.strerror or exc}); the rows went to stdout"
                )
        if json_out:
            print_json_rows(rows)
            return
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"{problem.name}: {method} at {bits} bits, n = {G.shape[0]}")
        for col in ("row", "solver", "kind", "snr_db", "status", "gap", "seconds"):
            t.add_column(col)
        for r in rows:
            gap = "" if r["gap"] is None else f"{r['gap']:.2e}"
            t.add_row(
                str(r["row"]),
                r["solver"],
                r["kind"],
                _fmt(r["snr_db"]),
                r["status"],
                gap,
                f"{r['seconds']:.4f}",
            )
        Console().print(t)
