"""`pvq finetune` (not built yet: issue 5)."""

from __future__ import annotations

import typer

from pvq.cli._common import not_built


def register(app: typer.Typer) -> None:
    @app.command(
        "finetune",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        help="Not built yet (issue 5).",
    )
    def _cmd(ctx: typer.Context) -> None:
        not_built("finetune", "issue 5")
