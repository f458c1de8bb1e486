"""The one progress helper. Library code reports progress here; only the CLI turns it on.

Usage in library code::

    for item in progress(items, total=len(items), desc="sweep"):
        ...

By default this is a no-op iterator. ``enable_progress()`` (called by the CLI) makes it report on stderr:

- stderr is a terminal: one rich bar per loop — stage name, bar, done/total, elapsed time and an estimate
  of the time left; with an unknown total only the count and elapsed time (never "0/?").
- stderr is not a terminal (a log file, a pipe, CI): plain lines ``pvq: tensors: 0/210`` when a loop starts,
  then ``pvq: tensors: 77/210 (37%), 0:01:25 elapsed, about 0:02:25 left`` at most every
  :data:`LOG_EVERY_S` seconds (environment variable ``PVQ_PROGRESS_EVERY``, seconds), and a last line when
  it ends.

Only the outermost loop reports: a loop run inside another reported loop (one tensor's sweep inside the
model's sweep, a layer's calibration capture inside the layer stage) stays silent, so no inner bar flashes.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from pvq._interrupt import check as check_interrupt

__all__ = ["progress", "enable_progress", "progress_enabled", "LOG_EVERY_S", "format_seconds", "stage_log"]

T = TypeVar("T")
_ENABLED = False
_DEPTH = 0  # reported loops currently running (only depth 0 reports)
LOG_EVERY_S = 30.0


def enable_progress(on: bool = True) -> None:
    """Turn progress reporting on (CLI only)."""
    global _ENABLED
    _ENABLED = on


def progress_enabled() -> bool:
    return _ENABLED


def format_seconds(s: float) -> str:
    """``h:mm:ss`` for a duration in seconds."""
    s = max(0, int(round(s)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _log_every() -> float:
    try:
        return max(0.0, float(os.environ.get("PVQ_PROGRESS_EVERY", LOG_EVERY_S)))
    except ValueError:
        return LOG_EVERY_S


def _count_line(desc: str, done: int, total: int | None, elapsed: float) -> str:
    if not total:
        return f"pvq: {desc}: {done} done, {format_seconds(elapsed)} elapsed"
    line = f"pvq: {desc}: {done}/{total} ({100 * done // total}%), {format_seconds(elapsed)} elapsed"
    if 0 < done < total:
        line += f", about {format_seconds(elapsed / done * (total - done))} left"
    return line


def _lines(items: Iterable[T], total: int | None, desc: str) -> Iterator[T]:
    """Plain progress lines on stderr (not a terminal)."""
    every = _log_every()
    t0 = last = time.monotonic()
    print(f"pvq: {desc}: 0/{total}" if total else f"pvq: {desc}: started", file=sys.stderr, flush=True)
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every and (total is None or done < total):
            print(_count_line(desc, done, total, now - t0), file=sys.stderr, flush=True)
            last = now
    print(_count_line(desc, done, total, time.monotonic() - t0), file=sys.stderr, flush=True)


def _bar(items: Iterable[T], total: int | None, desc: str) -> Iterator[T]:
    """A rich bar on the terminal: stage, bar, done/total, elapsed, time left."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if total:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
    else:  # unknown total: a count and the elapsed time, never "0/?"
        columns = (TextColumn("{task.description}"), TextColumn("{task.completed} done"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(desc, total=total)
        for item in items:
            yield item
            bar.advance(task)


def progress(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterator[T]:
    """Iterate over ``items``, reporting progress on stderr when the CLI enabled it (see the module doc).
    ``total`` defaults to ``len(items)`` when ``items`` has a length."""
    global _DEPTH
    if not _ENABLED or _DEPTH > 0:
        for item in items:
            check_interrupt()  # a Ctrl-C a finaliser swallowed still stops the loop (pvq._interrupt)
            yield item
        return
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    if total == 0:  # nothing to do (e.g. everything resumed): no bar, no lines
        yield from items
        return
    _DEPTH += 1
    try:
        for item in (_bar if sys.stderr.isatty() else _lines)(items, total, desc or "progress"):
            check_interrupt()
            yield item
    finally:
        _DEPTH -= 1


def stage_log(quiet: bool = False) -> Callable[[str], None]:
    """The CLI's ``log`` callback for one-line stage messages (stage starts, resume notices, notes) on stderr:
    dimmed on a terminal, ``pvq: <message>`` lines otherwise; silent when ``quiet``."""
    if quiet:
        return lambda _msg: None
    if not sys.stderr.isatty():
        return lambda msg: print(f"pvq: {msg}", file=sys.stderr, flush=True)
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True)
    return lambda msg: err.print(f"[dim]{escape(msg)}[/dim]")
