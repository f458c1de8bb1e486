"""`pvq reproduce NAME|all`: regenerate a paper figure/table from the experiments registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from pvq import experiments
from pvq._io import atomic_write_text, to_jsonable
from pvq._progress import enable_progress
from pvq.cli._common import check_seed, print_json_rows
from pvq.errors import PvqInputError

# reproductions that keep finished fine-tuning runs in OUT/NAME (runs.jsonl, checkpoints) and reuse them
KEPT_RUNS = ("table1", "fig5", "fig8", "toolbox")


def _recorded(sub: Path) -> dict | None:
    """Preset and seed of the run an earlier pvq recorded in ``sub/config.json`` (before key files)."""
    try:
        cfg = json.loads((sub / "config.json").read_text())
        return {"preset": cfg["preset"], "seed": cfg["seed"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def register(app: typer.Typer) -> None:
    @app.command("reproduce")
    def reproduce(
        name: str = typer.Argument(..., help="fig1|fig2|fig6|fig3|table2|fig4|table1|fig5|fig7|fig8|toolbox|all"),
        preset: str = typer.Option("smoke", help="smoke (seconds) | cpu (this machine) | gpu (needs --device cuda)"),
        out: Path = typer.Option(Path("pvq-reproduce"), help="output folder"),
        seed: int = typer.Option(0, help="random seed"),
        device: str = typer.Option("cpu", help="cpu | cuda"),
        json_out: bool = typer.Option(False, "--json", help="print the rows as JSON on stdout"),
        scale: str = typer.Option(
            "tensor", "--scale", help="fig4: quantization scale, tensor (per-tensor MSE) | chunk-grid (published)"
        ),
        whole_rows: bool = typer.Option(
            False, "--whole-rows", help="fig4: add a panel, the chunked optimum against the whole row's, same rows"
        ),
    ) -> None:
        """Regenerate a figure or table of the paper into OUT/NAME/ (rows JSON, figures PNG+SVG)."""
        check_seed(seed)
        try:
            cfg = experiments.ReproduceConfig(
                preset=preset, out=out, seed=seed, device=device, scale=scale, whole_rows=whole_rows
            )
        except ValueError as exc:
            raise PvqInputError(f"pvq reproduce: {exc}") from None
        known = experiments.names()
        todo = known if name == "all" else [name]
        for n in todo:
            if n not in known:
                raise PvqInputError(f"pvq reproduce: unknown figure/table '{n}'; known: {', '.join(known) or 'none yet'}")
        from pvq._outdir import open_output

        with open_output(out) as folder:  # checked and locked for the whole run; kept runs: this preset's
            for n in todo:
                if n in KEPT_RUNS:
                    folder.claim(n, {"preset": preset, "seed": seed}, recorded=_recorded(out / n))
            enable_progress(not json_out)
            all_rows = []
            index_entries = []
            for n in todo:
                sub = out / n
                result = experiments.get(n)(cfg)
                sub.mkdir(parents=True, exist_ok=True)
                atomic_write_text(sub / "result.json", json.dumps(to_jsonable(result.to_json()), indent=1))
                paths = result.plot(sub)
                atomic_write_text(sub / "config.json", json.dumps(cfg.to_json(), indent=1))  # last
                all_rows.extend({"experiment": n, **r} if name == "all" else r for r in result.rows())
                notes = list(result.to_json().get("notes", []) or [])
                index_entries.append((n, notes, [Path(p) for p in paths], len(result.rows())))
                if not json_out:
                    print(f"{n}: {len(result.rows())} rows -> {sub}", file=sys.stderr)
                    for p in paths:
                        print(f"  {p}", file=sys.stderr)
        if name == "all":
            from pvq import __version__
            from pvq.report._index import IndexEntry, write_reproduce_index

            page = write_reproduce_index(out, [IndexEntry(*e) for e in index_entries], cfg.to_json(), __version__)
            if not json_out:
                print(f"index: {page}", file=sys.stderr)
        if json_out:
            print_json_rows(all_rows)
