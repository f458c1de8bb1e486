"""`pvq tensors` (not built yet: issue 4)."""

from __future__ import annotations

import typer

from pvq.cli._common import not_built


def register(app: typer.Typer) -> None:
    @app.command(
        "tensors",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        help="Not built yet (issue 4).",
    )
    def _cmd(ctx: typer.Context) -> None:
        not_built("tensors", "issue 4")
