"""`pvq compare [SOURCE]`: the main job — everything for one model, one report that answers prune or quantize."""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import typer

from pvq._defaults import COMPARE_LAYER_TIME_S
from pvq.cli._common import check_seed, parse_bits
from pvq.errors import PvqInputError

SHORT = {"pruning": "P", "n:m": "N:M", "quant+n:m": "N:M+Q", "quant+prune": "P+Q", "fp16": "FP16"}


def _default_out(source: str) -> Path:
    stem = Path(source.rstrip("/")).name or "model"
    stem = re.sub(r"\.(pt|pth|bin|ckpt|safetensors|onnx|gguf)$", "", stem)
    return Path(f"pvq-compare-{re.sub(r'[^A-Za-z0-9_.-]+', '_', stem)}")


def _check_budget(text: str) -> None:
    """``--budget`` checked before any work (it used to fail after the whole sweep). A size (``1.5MB``)
    is converted to bits per weight only once the model's weight count is known; here it need only
    parse to a positive size, so it is checked against an effectively unlimited weight count."""
    from pvq.compare import parse_budget

    is_size = str(text).strip().lower().endswith("b")
    try:
        parse_budget(text, total_weights=10**30 if is_size else 1)
    except ValueError as exc:
        raise PvqInputError(str(exc)) from None


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """``--json``: while the job runs, whatever writes to stdout, Python or compiled code (SciPy's HiGHS MILP
    prints a debug line from C++), goes to stderr, so stdout holds only the JSON printed afterwards."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def json_rows(result: object, verdict: object, page: object) -> list[dict[str, object]]:
    """``--json``: one row per bit budget (``row: summary``: tensors, wins per family, close calls, median SNRs in
    dB, the paper's mask-free wins), then one ``row: verdict`` (headline, points, warnings, the recommendation
    under the budget, the report's path)."""
    paper = {r["bits"]: r for r in result.summary_paper}  # type: ignore[attr-defined]
    rows: list[dict[str, object]] = [
        {"row": "summary", **r, "paper_wins": paper.get(r["bits"], {}).get("wins")}
        for r in result.summary  # type: ignore[attr-defined]
    ]
    rows.append(
        {
            "row": "verdict",
            **verdict.to_json(),  # type: ignore[attr-defined]
            "model": result.source,  # type: ignore[attr-defined]
            "recommendation": result.allocation.summary(),  # type: ignore[attr-defined]
            "report": str(page),
        }
    )
    return rows


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return "inf" if math.isinf(x) else f"{x:.1f}"


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        source: str = typer.Argument(
            "mobilenet_v2", help="bundled model name (see `pvq models`) or a model file/folder"
        ),
        bits: str = typer.Option("2-8", "--bits", help="bit budgets: a range 2-8 or a list 8,4,2 (2..8)"),
        data: Path | None = typer.Option(  # noqa: B008
            None, "--data", help="calibration images (a folder) for the layer-wise comparison and --eval"
        ),
        arch: str | None = typer.Option(
            None,
            "--arch",
            help="package.module:factory, a function returning your nn.Module, when SOURCE is its state dict "
            "(.safetensors or .pt): runs the layer-wise stage and --eval on it",
        ),
        budget: str = typer.Option(
            "4", "--budget", help="model size budget: bits/weight (4), share of FP16 (25%), or size (1.5MB)"
        ),
        out: Path | None = typer.Option(  # noqa: B008
            None, "--out", help="output folder [default: ./pvq-compare-<model>]"
        ),
        layers: int = typer.Option(
            2, "--layers", help="layers sampled for the layer-wise (output error) comparison; 0 skips it"
        ),
        chunks: int = typer.Option(4, "--chunks", help="chunks (sub-problems) solved per sampled layer"),
        layer_time: float = typer.Option(
            COMPARE_LAYER_TIME_S, "--layer-time", help="time budget of the layer-wise stage (s)"
        ),
        overhead: bool = typer.Option(
            True,
            "--overhead/--no-overhead",
            help="charge pruning its mask (1 bit/weight) and N:M its metadata in the verdict and the "
            "recommendation (--no-overhead: the paper's mask-free accounting)",
        ),
        eval_: bool = typer.Option(
            True,
            "--eval/--no-eval",
            help="apply every option at each budget to the whole model and measure its quality on held-out "
            "data (bundled models, or a weights file with --arch; a weights file alone cannot run)",
        ),
        eval_budgets: str = typer.Option(
            "2,3,4,8", "--eval-budgets", help="real bits per weight at which --eval compares options"
        ),
        eval_options: str | None = typer.Option(
            None,
            "--eval-options",
            help="recipe lines --eval applies, comma-separated, or 'all' (adds int:g128:rtn, prune:wanda) "
            "[default: int:channel:rtn, int:g128:gptq, prune:magnitude, prune:sparsegpt, 2:4:sparsegpt, "
            "prune50:sparsegpt+int:g128:gptq]",
        ),
        granularity: str = typer.Option(
            "tensor,channel,g128",
            "--granularity",
            help="quantization granularities compared with pruning at equal real bits/weight (scales, zero "
            "points, bitmask counted); uint:G adds a zero point; '' for the paper's per-tensor comparison only",
        ),
        deploy: bool = typer.Option(
            False,
            "--deploy/--no-deploy",
            help="also deploy the options (ONNX Runtime / torch, CPU): real bytes on disk, latency ratio vs FP32 "
            "measured in the same run, agreement with the PyTorch model, and prune-or-quantize at equal latency and "
            "equal bytes (bundled image and text-encoder models; needs pvq[deploy])",
        ),
        deploy_options: str | None = typer.Option(
            None,
            "--deploy-options",
            help="options --deploy measures, comma-separated, RUNTIME/OPTION (runtime onnxruntime when left out) "
            "[default: fp32, fp16, int8-static, int8-dynamic, prune50:magnitude, channels50, torch/fp32, "
            "torch/int8-dynamic, torch/2:4-gpu]",
        ),
        deploy_batch: str = typer.Option("1,32", "--deploy-batch", help="batch sizes --deploy times"),
        seed: int = typer.Option(0, "--seed", help="random seed (calibration crops, layer sample)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bars or stage messages on stderr"),
        json_out: bool = typer.Option(
            False,
            "--json",
            help="print a JSON array on stdout instead of the table: one row per bit budget (row: summary), "
            "then the verdict (row: verdict); progress stays on stderr",
        ),
    ) -> None:
        """Prune or quantize? Sweep every conv/linear tensor at each bit budget, solve a sample of layers exactly,
        recommend a mixed choice under a size budget, apply each option (and the recommendation) to the whole model
        and measure its quality on held-out data (--eval), and write OUT/index.html with the JSON/CSV and figures."""
        from rich.console import Console
        from rich.table import Table

        from pvq import __version__
        from pvq._progress import enable_progress, stage_log
        from pvq.compare import CompareConfig, run_compare
        from pvq.compare._text import verdict_text
        from pvq.compare._write import write_outputs

        t0 = time.perf_counter()
        bit_list = parse_bits(bits, lo=2, hi=8)
        check_seed(seed)
        _check_budget(budget)
        if data is not None and not data.is_dir():
            raise PvqInputError(f"--data: {data} is not a folder of images")
        from pvq.compare._eval_recipes import parse_lines

        try:
            budgets_eval = tuple(float(x) for x in eval_budgets.split(",") if x.strip())
            lines_eval = parse_lines(eval_options)
        except ValueError as exc:
            msg = str(exc) if str(exc).startswith("--eval") else f"--eval-budgets: not a list of numbers: {eval_budgets!r}"
            raise PvqInputError(msg) from None
        from pvq.compare._deploy_stage import DEPLOY_OPTIONS

        dep_opts = (
            tuple(o.strip() for o in deploy_options.split(",") if o.strip()) if deploy_options else DEPLOY_OPTIONS
        )
        try:
            dep_batches = tuple(int(b) for b in deploy_batch.split(",") if b.strip())
        except ValueError:
            raise PvqInputError(f"--deploy-batch: comma-separated integers, got {deploy_batch!r}") from None
        if deploy:
            import importlib.util

            missing = [m for m in ("onnxruntime", "onnx", "torch_pruning") if importlib.util.find_spec(m) is None]
            if missing:
                raise PvqInputError(f"--deploy: needs {', '.join(missing)} (pip install 'pvq[deploy]')")
        out_dir = out if out is not None else _default_out(source)
        if out_dir.exists() and not out_dir.is_dir():
            raise PvqInputError(f"--out: {out_dir} exists and is not a folder")
        cfg = CompareConfig(
            source=source,
            bits=tuple(bit_list),
            out=out_dir,
            data=str(data) if data is not None else None,
            budget=budget,
            layers=layers,
            chunks=chunks,
            layer_time_s=layer_time,
            count_overhead=overhead,
            seed=seed,
            eval=eval_,
            eval_budgets=budgets_eval,
            eval_lines=lines_eval,
            granularity=tuple(x for x in granularity.split(",") if x.strip()),
            arch=arch,
            deploy=deploy,
            deploy_options=dep_opts,
            deploy_batches=dep_batches,
        )
        enable_progress(not quiet)
        from pvq._outdir import open_output
        from pvq.compare._write import write_config

        quiet_stdout = _stdout_to_stderr() if json_out else contextlib.nullcontext()
        with quiet_stdout, open_output(out_dir, sources=[source]):  # checked, created and locked before any work
            log = stage_log(quiet)
            result = run_compare(cfg, log=log)
            log(f"writing the report into {out_dir}")
            verdict = verdict_text(result)
            if getattr(result, "deployment", None) is not None:
                from pvq.compare._deploy_stage import deploy_verdict_point

                verdict.points.append(deploy_verdict_point(result.deployment))
            from pvq.report import write_compare_report

            try:
                files = write_outputs(result, out_dir, verdict, __version__)
                page = write_compare_report(result, verdict, out_dir, __version__, files)
                write_config(result, out_dir, __version__)  # the commit marker: last
            except OSError as exc:
                raise PvqInputError(
                    f"--out: writing the results into {out_dir} failed ({exc.strerror or exc}); the measurements "
                    f"are kept in {out_dir / 'partial'}: free space or fix permissions and rerun to write them"
                ) from None

        if json_out:
            from pvq.cli._common import print_json_rows

            print_json_rows(json_rows(result, verdict, page))
            return
        con = Console()
        t = Table(
            title=f"pvq compare: {result.source} ({len(result.records)} tensors)",
            caption=f"wins at equal size with mask/metadata {'counted' if overhead else 'free (--no-overhead)'} "
            "(Q = quantization, P = pruning); dB = median SNR; paper = the paper's mask-free accounting",
            title_justify="left",
        )
        for col in ("bits", "INT-b wins", "others win", "close <1dB", "INT-b dB", "prune dB", "paper"):
            t.add_column(col, justify="right")
        paper = {r["bits"]: r for r in result.summary_paper}
        for r in result.summary:
            q = r["wins"].get("quantization", 0)
            others = (
                ", ".join(f"{SHORT.get(k, k)} {v}" for k, v in r["wins"].items() if k != "quantization")
                or "0"
            )
            p = paper.get(r["bits"])
            t.add_row(
                str(r["bits"]),
                f"{q}/{r['tensors']}",
                others,
                str(r["close_calls"]),
                _fmt(r["median_quant_snr_db"]),
                _fmt(r["median_prune_snr_db"]),
                f"{p['wins'].get('quantization', 0)}/{p['tensors']}" if p else "-",
            )
        con.print(t)
        plain = verdict.plain().splitlines()
        con.print("[bold]Verdict:[/bold] " + plain[0])
        for line in plain[1:]:
            con.print(
                ("  [yellow]" if line.startswith("!") else "  ")
                + line
                + ("[/yellow]" if line.startswith("!") else ""),
                highlight=False,
            )
        dep = getattr(result, "deployment", None)
        if dep is not None:
            con.print("[bold]Deployed (this machine only):[/bold]")
            for a in dep.answers:
                con.print("  " + a.text, highlight=False)
        elif result.deploy_note:
            con.print(result.deploy_note, highlight=False)
        con.print(f"report: {page}   ({time.perf_counter() - t0:.0f} s)")
        sys.stdout.flush()
