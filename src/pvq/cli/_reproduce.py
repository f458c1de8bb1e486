"""`pvq reproduce` (not built yet: issues 3-7)."""

from __future__ import annotations

import typer

from pvq.cli._common import not_built


def register(app: typer.Typer) -> None:
    @app.command(
        "reproduce",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        help="Not built yet (issues 3-7).",
    )
    def _cmd(ctx: typer.Context) -> None:
        not_built("reproduce", "issues 3-7")
