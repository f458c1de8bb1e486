"""`pvq layers SOURCE --layer NAME`: per-layer post-training pruning vs quantization with exact optima."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from pvq._io import atomic_write_text, to_jsonable
from pvq.cli._common import check_seed, fail, parse_bits, print_json_rows

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command(
        "layers", help="Per-layer post-training pruning vs quantization (paper Fig. 4), exact optima."
    )
    def _cmd(
        source: str = typer.Argument(
            ..., help="bundled model: mobilenet_v2 | efficientnet_lite0 | minilm | smollm2"
        ),
        layer: str = typer.Option(..., "--layer", help="module name, e.g. features.8.conv.0.0"),
        bits: str = typer.Option("2-8", "--bits", help="a range 2-8 or a list 8,4,2"),
        opt_dim_arg: str = typer.Option(
            "32",
            "--opt-dim",
            help="inputs per chunk (3x3 convs: whole channels); 'full' (or 0) = whole rows, no chunking",
        ),
        solvers: str = typer.Option(
            None,
            "--solvers",
            help="'all' or a comma list [default: magnitude,obs,swap,exact + rtn,gptq,exact]",
        ),
        method: str = typer.Option("both", "--method", help="prune | quant | both"),
        ray_address: str = typer.Option(None, "--ray-address", help="Ray cluster address, or 'local'"),
        workers: int = typer.Option(None, "--workers", help="local processes [default: all cores]"),
        out: Path = typer.Option(None, "--out", help="output folder [default: ./pvq-layers-<layer>]"),  # noqa: B008
        max_chunks: int = typer.Option(
            None, "--max-chunks", help="solve only this many chunks (evenly spread)"
        ),
        max_rows: int = typer.Option(None, "--max-rows", help="solve only this many output rows per chunk"),
        time_limit: float = typer.Option(
            60.0, "--time-limit", help="seconds per row and method, all solvers and warm starts included"
        ),
        calib_batches: int = typer.Option(4, "--calib-batches", help="calibration batches of 8 inputs"),
        seed: int = typer.Option(0, "--seed", help="calibration / row sampling seed"),
        scale: str = typer.Option(
            "tensor", "--scale", help="quantization scale: tensor (per-tensor MSE) | chunk-grid (published, per chunk)"
        ),
        json_out: bool = typer.Option(False, "--json", help="print a JSON array of rows on stdout"),
        save_problems: Path = typer.Option(  # noqa: B008
            None,
            "--save-problems",
            help="also write each chunk's problem (G, w, scale_<bits>) to DIR/<layer>.chunk<k>.npz, "
            "the input of `pvq solve`",
        ),
    ) -> None:
        from pvq._progress import enable_progress
        from pvq.cli._solve import parse_solvers
        from pvq.layerwise import capture_layer_problems, chunk_summary, run_layer_problems
        from pvq.layerwise._chunk_scale import SCALE_MODES
        from pvq.models import bundled_names, calibration_batches, create_model

        bit_list = parse_bits(bits, lo=1, hi=8)
        if method not in ("prune", "quant", "both"):
            fail(f"--method: must be prune, quant or both, got '{method}'")
        methods = ["prune", "quant"] if method == "both" else [method]
        solver_map = parse_solvers(solvers, methods)
        for name, val in (("--max-chunks", max_chunks), ("--max-rows", max_rows), ("--workers", workers)):
            if val is not None and val < 1:
                fail(f"{name}: must be >= 1, got {val}")
        if opt_dim_arg.strip().lower() == "full":
            opt_dim = 0
        else:
            try:
                opt_dim = int(opt_dim_arg)
            except ValueError:
                fail(f"--opt-dim: must be a whole number or 'full', got '{opt_dim_arg}'")
            if opt_dim < 0:
                fail(f"--opt-dim: must be >= 0 or 'full', got {opt_dim}")
        if not time_limit > 0:  # inf (no limit) is allowed; NaN is not
            fail(f"--time-limit: must be positive, got {time_limit}")
        if calib_batches < 1:
            fail(f"--calib-batches: must be >= 1, got {calib_batches}")
        check_seed(seed)
        if ray_address:
            from pvq.parallel import check_ray_address

            check_ray_address(ray_address)
        if save_problems is not None and save_problems.exists() and not save_problems.is_dir():
            fail(f"--save-problems: {save_problems} exists and is not a folder")
        if scale not in SCALE_MODES:
            fail(f"--scale: must be {' or '.join(SCALE_MODES)}, got '{scale}'")
        if source not in bundled_names():
            fail(
                f"SOURCE: '{source}' is not a bundled model ({', '.join(bundled_names())}); activations need a model that runs"
            )
        from pvq._outdir import open_output

        with open_output(out or Path(f"pvq-layers-{layer.replace('/', '_')}")):
            pass  # checked (a folder, writable, not in use) before the capture and the solves
        enable_progress(not json_out)
        model = create_model(source)
        batches = calibration_batches(source, calib_batches, seed=seed)
        problems = capture_layer_problems(
            model,
            layer,
            batches,
            opt_dim=opt_dim or None,
            bits=bit_list,
            max_chunks=max_chunks,
            max_rows=max_rows,
            seed=seed,
            scale=scale,
        )
        out_dir = out or Path(f"pvq-layers-{layer.replace('/', '_')}")
        out_dir.mkdir(parents=True, exist_ok=True)
        if save_problems is not None:
            _save_problems(problems, save_problems)
        config = {
            "source": source, "layer": problems[0].layer, "bits": bit_list, "opt_dim": opt_dim, "solvers": solver_map,
            "ray_address": ray_address, "max_chunks": max_chunks, "max_rows": max_rows, "time_limit": time_limit,
            "calib_batches": calib_batches, "seed": seed, "scale": scale, "chunks": len(problems), "samples": problems[0].samples,
        }  # fmt: skip
        atomic_write_text(out_dir / "config.json", json.dumps(to_jsonable(config), indent=1))
        rows = run_layer_problems(
            problems,
            bit_list,
            solver_map,
            time_limit,
            cache=out_dir / "rows.jsonl",
            ray_address=ray_address,
            workers=workers,
            seed=seed,
        )
        summary = chunk_summary(rows)
        atomic_write_text(out_dir / "rows.json", json.dumps(to_jsonable(rows), indent=1))
        atomic_write_text(out_dir / "chunks.json", json.dumps(to_jsonable(summary), indent=1))
        if json_out:
            print_json_rows(rows)
            return
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"{source} {problems[0].layer}: chunk SNR (dB), {len(problems)} chunks -> {out_dir}")
        for col in (
            "chunk",
            "bits",
            "method",
            "solver",
            "kind",
            "snr_db",
            "rows",
            "proved optimal",
            "seconds",
        ):
            t.add_column(col)
        for r in summary:
            snr = "inf" if math.isinf(r["snr_db"]) else f"{r['snr_db']:.2f}"
            po = "" if r["proved_optimal"] is None else f"{r['proved_optimal']}/{r['rows']}"
            t.add_row(
                str(r["chunk"]),
                str(r["bits"]),
                r["method"],
                r["solver"],
                r["kind"],
                snr,
                str(r["rows"]),
                po,
                f"{r['seconds']:.2f}",
            )
        Console().print(t)


def _save_problems(problems: list, folder: Path) -> None:
    """``--save-problems``: one ``pvq solve`` file per chunk."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for p in problems:
            p.to_npz(folder / p.file_name())
    except OSError as exc:
        fail(f"--save-problems: cannot write into {folder} ({exc.strerror or exc})")
