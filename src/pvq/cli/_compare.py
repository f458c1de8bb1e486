"""`pvq compare` (not built yet: issue 6)."""

from __future__ import annotations

import typer

from pvq.cli._common import not_built


def register(app: typer.Typer) -> None:
    @app.command(
        "compare",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        help="Not built yet (issue 6).",
    )
    def _cmd(ctx: typer.Context) -> None:
        not_built("compare", "issue 6")
