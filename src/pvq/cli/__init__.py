"""The ``pvq`` command. Thin: parse, call the library, print/save. Each command lives in its own module."""

from __future__ import annotations

import sys

import typer

from pvq.cli import _apply, _compare, _finetune, _layers, _models, _reproduce, _solve, _tensors, _theory
from pvq.errors import PvqInputError

__all__ = ["app", "main"]

app = typer.Typer(
    name="pvq",
    help="Pruning vs quantization: which is better, for your model? (Kuzmin et al., NeurIPS 2023)",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _mod in (_compare, _theory, _tensors, _layers, _solve, _finetune, _reproduce, _models, _apply):
    _mod.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app; bad input becomes one line on stderr and exit code 2."""
    try:
        app(args=argv, standalone_mode=True)
    except PvqInputError as exc:
        print(f"pvq: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("pvq: interrupted; partial results were kept where the command writes them", file=sys.stderr)
        sys.exit(130)
