"""The one progress helper. Library code reports progress here; only the CLI turns it on.

Usage in library code::

    for item in progress(items, total=len(items), desc="sweep"):
        ...

By default this is a no-op iterator. ``enable_progress()`` (called by the CLI) makes it draw a
rich progress bar on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress", "enable_progress", "progress_enabled"]

T = TypeVar("T")
_ENABLED = False


def enable_progress(on: bool = True) -> None:
    """Turn progress bars on (CLI only)."""
    global _ENABLED
    _ENABLED = on


def progress_enabled() -> bool:
    return _ENABLED


def progress(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
    """Iterate over ``items``, drawing a progress bar on stderr when the CLI enabled it."""
    if not _ENABLED or not sys.stderr.isatty():
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(desc, total=total)
        for item in items:
            yield item
            bar.advance(task)
