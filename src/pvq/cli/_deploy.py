"""`pvq deploy SOURCE [--recipe R ...] [--runtime onnxruntime|torch] [--batch 1,32] [--json]`: real bytes, peak
memory and latency of deployment options on a real runtime, with each option's held-out quality."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer

from pvq.errors import PvqInputError


def _batches(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise PvqInputError(f"--batch: comma-separated integers expected, got {text!r}") from None
    if not out:
        raise PvqInputError("--batch: give at least one batch size")
    return tuple(dict.fromkeys(out))


def _fmt_bytes(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB"


def _table(rows: list[dict[str, Any]], batches: tuple[int, ...]) -> str:
    """One line per option: bytes, checkpoint bytes, latency and ratio per batch, quality, peak memory."""
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["recipe"], {})[r["batch"]] = r
    head = (
        ["option", "bytes", "ckpt"] + [f"b{b} ms (x fp32)" for b in batches] + ["quality", "peak MB", "note"]
    )
    lines = [head]
    for opt, per in by.items():
        r0 = per[batches[0]]
        if r0["status"] != "ok":
            lines.append([opt, "-", "-"] + ["-"] * len(batches) + ["-", "-", f"skipped: {r0['note']}"])
            continue
        lat = [f"{per[b]['latency_ms']:.1f} ({per[b]['latency_ratio']:.2f})" for b in batches]
        q = f"{r0['metric']} {r0['value']:.3f}" if r0["value"] is not None else "-"
        pk = "-" if r0["peak_mb"] is None else f"{r0['peak_mb']:.0f}"
        lines.append(
            [opt, _fmt_bytes(r0["bytes"]), _fmt_bytes(r0["checkpoint_bytes"]), *lat, q, pk, r0["note"][:60]]
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def register(app: typer.Typer) -> None:
    @app.command("deploy")
    def deploy_cmd(
        source: str = typer.Argument(..., help="bundled model: mobilenet_v2, efficientnet_lite0, minilm or smollm2 (causal LM: no KV cache, "
            "fp32/fp16/int8-dynamic)"),
        recipe: list[str] = typer.Option(  # noqa: B008
            [],
            "--recipe",
            help="option to measure (repeatable): fp32 fp16 int8-static int8-dynamic int8-weight channelsK "
            "2:4-gpu or any pvq recipe (prune50:magnitude, int8:channel:rtn...); default: all of "
            "fp32 fp16 int8-static int8-dynamic int8-weight prune50:magnitude prune75:magnitude channels50 "
            "channels25 2:4-gpu",
        ),
        runtime: str = typer.Option("onnxruntime", "--runtime", help="onnxruntime or torch"),
        batch: str = typer.Option("1,32", "--batch", help="batch sizes to time, comma-separated"),
        threads: int = typer.Option(
            1, "--threads", help="intra-op threads (both runtimes), pinned for every option"
        ),
        repeats: int = typer.Option(10, "--repeats", help="timed calls per batch size (median reported)"),
        warmup: int = typer.Option(2, "--warmup", help="untimed calls before timing"),
        out: Path | None = typer.Option(  # noqa: B008
            None, "--out", help="keep the artifacts (ONNX files, checkpoints) and deploy.json here"
        ),
        force: bool = typer.Option(False, "--force", help="replace --out if it exists"),
        json_out: bool = typer.Option(False, "--json", help="print a JSON array of rows on stdout"),
    ) -> None:
        """Export SOURCE under each option, check every exported model against PyTorch, and measure bytes on
        disk, peak memory, latency (ratio vs FP32 in the same run) and held-out quality."""
        from pvq.deploy import DEFAULT_OPTIONS, LM_OPTIONS, DeployConfig, deploy, parse_option
        from pvq.evaluate import kind_of

        # everything checked before any work
        cfg = DeployConfig(
            batches=_batches(batch), runtime=runtime, threads=threads, warmup=warmup, repeats=repeats
        )
        options = list(recipe) or list(DEFAULT_OPTIONS)
        for o in options:
            parse_option(o)
        from pvq.compare._layers_stage import bundled_name_of

        name = bundled_name_of(source)
        if name is None:
            raise PvqInputError(
                f"{source}: pvq deploy measures bundled models (mobilenet_v2, efficientnet_lite0, minilm, smollm2); "
                "for your own module use the Python API pvq.deploy.deploy(model, name, options, kind=...)"
            )
        kind = kind_of(name)
        if kind == "lm":  # no KV cache: a fixed-length prompt scored at once (pvq.deploy._run)
            options = list(recipe) or list(LM_OPTIONS)
            bad = [o for o in options if parse_option(o).kind not in ("fp32", "fp16", "int8-dynamic", "recipe")]
            if bad:
                raise PvqInputError(
                    f"--recipe {bad[0]}: not measured for a causal LM ({name}); use fp32, fp16, int8-dynamic or a "
                    "pvq recipe"
                )
        if out is not None and out.exists() and not force:
            raise PvqInputError(f"--out: {out} exists (use --force to replace it)")
        from pvq.models import create_model

        def say(msg: str) -> None:
            print(f"pvq deploy: {msg}", file=sys.stderr, flush=True)

        # a causal LM runs on pvq's own Llama decoder (same outputs as transformers', test_models_bundled):
        # transformers 5's LlamaForCausalLM does not export with the TorchScript exporter (aten::diff in its
        # mask code, ONNX opset 17)
        model = create_model(name, backend="pvq") if kind == "lm" else create_model(name)
        tmp: Path | None = None
        if out is not None:  # built next to --out and renamed into place: nothing half-written
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            result = deploy(model, name, options, cfg, kind=kind, out_dir=tmp, progress=say)
            rows = result.to_json()
            if tmp is not None and out is not None:
                from pvq._io import atomic_write_text, to_jsonable

                atomic_write_text(tmp / "deploy.json", json.dumps([to_jsonable(r) for r in rows], indent=1))
                settings = {
                    "source": name,
                    "options": options,
                    **{k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
                }
                atomic_write_text(tmp / "config.json", json.dumps(to_jsonable(settings), indent=1))
                if out.exists():
                    shutil.rmtree(out) if out.is_dir() else out.unlink()
                umask = os.umask(0)
                os.umask(umask)
                tmp.chmod(0o777 & ~umask)
                os.replace(tmp, out)
                tmp = None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        if json_out:
            from pvq.cli._common import print_json_rows

            print_json_rows(rows)
            return
        print(f"{name} on {runtime}, {threads} thread(s), median of {repeats} after {warmup} warm-up")
        print(_table(rows, cfg.batches))
