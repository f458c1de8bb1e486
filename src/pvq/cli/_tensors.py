"""`pvq tensors SOURCE`: quantization vs magnitude pruning for every weight tensor (paper Sec. 3.4)."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import typer

from pvq._io import atomic_write_text, to_jsonable
from pvq.cli._common import parse_bits, print_json_rows
from pvq.errors import PvqInputError


def _parse_nm(text: str) -> list[tuple[int, int]]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            n, m = (int(x) for x in part.split(":"))
        except ValueError:
            raise PvqInputError(f"--nm: cannot parse '{part}' (use N:M, e.g. 2:4,1:4)") from None
        out.append((n, m))
    return out


def _csv_text(rows: list[dict]) -> str:
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(keys))
    w.writeheader()
    for r in rows:
        w.writerow({k: ("x".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()})
    return buf.getvalue()


def _f(x: float, width: int = 8) -> str:
    return f"{x:>{width}.2f}" if math.isfinite(x) else f"{x!s:>{width}}"


def register(app: typer.Typer) -> None:
    @app.command("tensors")
    def tensors(
        source: str = typer.Argument(
            ..., help="bundled model name (pvq models), checkpoint/safetensors/ONNX/GGUF file or HF folder"
        ),
        bits: str = typer.Option("2-8", "--bits", help="bit-widths 2..16: a range 2-8 or a list 8,4,2"),
        range_search: str = typer.Option(
            "optimal", "--range-search", help="optimal (exact) | grid (published)"
        ),
        json_out: bool = typer.Option(False, "--json", help="print a JSON array of rows on stdout"),
        csv_file: str = typer.Option("", "--csv", help="also write the rows as CSV to this file"),
        out_dir: str = typer.Option(
            "", "--out", help="folder for tensors.jsonl (resumable), tensors.json and tensors.csv"
        ),
        count_overhead: bool = typer.Option(
            False, "--count-overhead", help="charge pruning its mask (1 bit/weight) and N:M its metadata"
        ),
        formats: str = typer.Option(
            "",
            "--formats",
            help="extra formats: nf4, fp8_e4m3, fp4_e2m1 (at their bits) or fp, nf (every bit)",
        ),
        per_channel: bool = typer.Option(False, "--per-channel", help="add per-output-channel quant/pruning"),
        nm: str = typer.Option("", "--nm", help="N:M patterns, e.g. 2:4,4:8,1:4 (reported at bits 16N/M)"),
        granularity: str = typer.Option(
            "",
            "--granularity",
            help="also compare quantization at these granularities with pruning at equal real bits/weight "
            "(scales, zero points, bitmask counted): tensor,channel,g128; uint:G adds a zero point",
        ),
        max_elements: str = typer.Option(
            "2e10",
            "--max-elements",
            help="refuse a tensor with more elements than this (a file lying about shapes)",
        ),
    ) -> None:
        """Quantization vs pruning SNR for every conv/linear weight of SOURCE, at every bit-width."""
        from contextlib import nullcontext

        from pvq._outdir import check_writable_file, open_output, source_fingerprint
        from pvq._progress import enable_progress
        from pvq.cli._common import parse_count
        from pvq.models import load_weights
        from pvq.tensors import parse_granularities, sweep

        b = parse_bits(bits, lo=2, hi=16)
        limit = parse_count(max_elements, "--max-elements")
        csv_path = Path(csv_file) if csv_file else None
        out = Path(out_dir) if out_dir else None
        if range_search not in ("optimal", "grid"):
            raise PvqInputError(f"--range-search: must be optimal or grid, got '{range_search}'")
        fmt_list = [f for f in (x.strip() for x in formats.split(",")) if f]
        nm_list = _parse_nm(nm)
        grans = parse_granularities(granularity)
        if csv_path is not None:  # outputs are checked before the sweep, not after it
            check_writable_file(csv_path, "--csv", sources=[source])
        ws = load_weights(source, max_elements=limit)  # lazy: tensors are read one at a time by the sweep
        with open_output(out, sources=[source]) if out is not None else nullcontext() as folder:
            if folder is not None:  # tensors.jsonl holds measurements of this source with these options only
                options = {"bits": b, "range_search": range_search, "formats": fmt_list, "per_channel": per_channel,
                           "nm": nm_list, "count_overhead": count_overhead}  # fmt: skip
                if grans:  # only when asked for: folders made without it resume as before
                    options["granularity"] = [g.label for g in grans]
                folder.claim("tensors.jsonl", {**options, "source_content": source_fingerprint(source)})
            ws, skipped = _drop_empty(ws)
            enable_progress(not json_out)
            res = sweep(
                ws,
                bits=b,
                range_search=range_search,
                formats=fmt_list,
                per_channel=per_channel,
                nm_patterns=nm_list,
                count_overhead=count_overhead,
                resume_path=None if out is None else out / "tensors.jsonl",
                granularities=grans,
            )
            res.notes.extend(skipped)
            rows = res.rows()
            _save(rows, res, out, csv_path, json_out)
        if json_out:
            print_json_rows(rows)
            return
        for note in res.notes:
            print(f"note: {note}", file=sys.stderr)
        if res.resumed:
            print(f"resumed: {res.resumed} tensors taken from {out / 'tensors.jsonl'}", file=sys.stderr)
        print(f"{res.source}: {len(res.names())} tensors, range search {range_search}")
        print(
            f"{'bits':>4} {'tensors':>7} {'prune wins':>10} {'corr. wins':>10} {'med quant':>9} {'med prune':>9} {'nat. sparsity':>13}"
        )
        for s in res.summary():
            print(
                f"{s['bits']:>4} {s['tensors']:>7} {s['prune_wins']:>10.1%} {s['prune_corrected_wins']:>10.1%} "
                f"{_f(s['median_quant_snr_db'], 9)} {_f(s['median_prune_snr_db'], 9)} {s['mean_quant_sparsity']:>13.1%}"
            )
        _print_granularity(res.granularity_summary())
        where = [str(p) for p in (out, csv_path) if p is not None]
        print("per-tensor rows: " + (", ".join(where) if where else "use --json, --csv or --out"))


def _print_granularity(summary: list[dict[str, Any]]) -> None:
    """Per granularity and bit-width: quantization vs magnitude pruning at equal real bits per weight."""
    if not summary:
        return
    print("quantization vs pruning at equal real bits per weight (scales, zero points, bitmask counted):")
    print(
        f"{'recipe':>16} {'real bits':>9} {'tensors':>7} {'quant wins':>10} {'95% Wilson':>13} "
        f"{'med quant':>9} {'med prune':>9} {'wins (paper)':>12}"
    )
    for s in summary:
        print(
            f"{s['recipe']:>16} {s['mean_real_bits']:>9.3f} {s['tensors']:>7} {s['quant_win_fraction']:>10.1%} "
            f"{s['quant_win_low']:>6.0%}-{s['quant_win_high']:<6.0%} {_f(s['median_quant_snr_db'], 9)} "
            f"{_f(s['median_prune_snr_db'], 9)} {s['quant_wins_paper'] / s['tensors']:>12.1%}"
        )


def _drop_empty(ws: Any) -> tuple[Any, list[str]]:
    """The weight set without tensors that have no weights (a zero dimension), and a note naming them:
    ``pvq tensors`` and ``pvq compare`` both skip what there is nothing to compress in, and say so."""
    empty = [n for n in ws if ws.info(n).numel == 0] if hasattr(ws, "info") else []
    if not empty:
        return ws, []
    kept = ws.filter(lambda i: i.numel > 0)
    if len(kept) == 0:
        raise PvqInputError(f"{getattr(ws, 'source', 'SOURCE')}: every conv/linear weight is empty")
    shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
    return kept, [f"skipped {len(empty)} empty tensor(s) (a zero dimension): {shown}"]


def _save(rows: list[dict], res: Any, out: Path | None, csv_path: Path | None, json_out: bool) -> None:
    """Write the rows where asked. If a write fails (disk full, folder removed meanwhile), the rows are
    not lost: they go to stdout (CSV, or the JSON that --json prints anyway) and the command exits 2."""
    try:
        if out is not None:
            atomic_write_text(out / "tensors.json", json.dumps(to_jsonable(res.to_json()), indent=1))
            atomic_write_text(out / "tensors.csv", _csv_text(rows))
        if csv_path is not None:
            atomic_write_text(csv_path, _csv_text(rows))
    except OSError as exc:
        if json_out:
            print_json_rows(rows)
        else:
            sys.stdout.write(_csv_text(rows))
            sys.stdout.flush()
        where = "stdout (JSON)" if json_out else "stdout as CSV"
        raise PvqInputError(
            f"cannot write {exc.filename or 'the results'} ({exc.strerror or exc}); the rows went to {where}"
        ) from None
