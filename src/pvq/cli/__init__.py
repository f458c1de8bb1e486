"""The ``pvq`` command. Thin: parse, call the library, print/save. Each command lives in its own module."""

from __future__ import annotations

import sys
import warnings

import typer

from pvq.cli import (
    _apply,
    _compare,
    _deploy,
    _evaluate,
    _finetune,
    _layers,
    _models,
    _reproduce,
    _solve,
    _tensors,
    _theory,
)
from pvq.errors import PvqInputError

__all__ = ["app", "main"]

app = typer.Typer(
    name="pvq",
    help="Pruning vs quantization: which is better, for your model? (Kuzmin et al., NeurIPS 2023)",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help layout: every default shown, flags without a type column (typer's rich layout prints
    # "<bool>" as the type of every flag, --help included, and eats "[...]" in help texts as markup)
    rich_markup_mode=None,
    context_settings={"max_content_width": 110},
)

for _mod in (_compare, _theory, _tensors, _layers, _solve, _finetune, _reproduce, _models, _apply, _evaluate, _deploy):
    _mod.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and always ends with ``sys.exit``.

    The one error path of the CLI: bad input (a ``PvqInputError`` from any layer, or click's own parameter
    errors) becomes one ``pvq: error: ...`` line on stderr and exit code 2, with no traceback and no usage
    box. Library warnings raised on the way are held back: after an error they would only bury the one
    line that matters; after success they are printed once each, as ``pvq: warning: ...``.
    """
    from pvq import _interrupt

    with _interrupt.installed() as interrupts, warnings.catch_warnings(record=True) as caught:
        try:
            code = app(args=argv, standalone_mode=False)
        except PvqInputError as exc:
            _error(str(exc))
        except (
            typer.TyperException
        ) as exc:  # click's UsageError, BadParameter, NoSuchOption, MissingParameter...
            if type(exc).__name__ == "NoArgsIsHelpError":  # plain `pvq` or `pvq CMD`: the help, as before
                ctx = getattr(exc, "ctx", None)
                print(ctx.get_help() if ctx is not None else exc, file=sys.stderr)
                sys.exit(2)
            _error(_click_message(exc))
        except (KeyboardInterrupt, typer.Abort):
            code = 130
        except Exception as exc:
            # Ctrl-C that lands inside compiled code (numba loading a cached kernel, a C extension) comes back
            # wrapped, e.g. SystemError("... returned a result with an exception set") caused by the
            # KeyboardInterrupt: that is still an interrupt, not a crash
            if not _caused_by_interrupt(exc):
                raise
            code = 130
    if interrupts.seen and code in (None, 0):  # a Ctrl-C swallowed by a finaliser, job finished
        code = 130
    if code == 130:  # typer turns Ctrl-C into exit code 130
        print("pvq: interrupted; partial results were kept where the command writes them", file=sys.stderr)
    for line in dict.fromkeys(f"pvq: warning: {_one_line(str(w.message))}" for w in caught):
        print(line, file=sys.stderr)
    sys.exit(code or 0)


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _click_message(exc: Exception) -> str:
    """click's message in one line, naming the command: ``solve: Invalid value for '--bits': ...``."""
    ctx = getattr(exc, "ctx", None)
    cmd = ctx.info_name if ctx is not None and ctx.parent is not None else None
    msg = _one_line(exc.format_message() if hasattr(exc, "format_message") else str(exc))
    return f"{cmd}: {msg}" if cmd else msg


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _error(message: str) -> None:
    print(f"pvq: error: {_one_line(message)}", file=sys.stderr)
    sys.exit(2)
