"""Ctrl-C that cannot be lost.

Python raises ``KeyboardInterrupt`` at the next bytecode of the main thread. When that bytecode belongs to a
finaliser (a ``__del__``, a weakref callback, garbage collection) the exception is printed as "Exception
ignored in ..." and dropped, and the job runs on as if Ctrl-C had never been pressed (seen in CI: ``pvq
tensors`` exited 0 after SIGINT). The CLI therefore installs :func:`install`'s handler, which records the
interrupt before raising; long loops call :func:`check` (``pvq._progress.progress`` does, once per item), which
raises again when an interrupt was recorded, and the CLI's exit code is 130 whenever one was.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["installed", "check", "Interrupts"]

_INTERRUPTED = False
_ACTIVE = False  # inside installed(): only then does check() act (a library caller keeps Python's own Ctrl-C)


class Interrupts:
    """What :func:`installed` saw: ``seen`` is True once a Ctrl-C was recorded (read it after the block)."""

    seen: bool = False


def _handler(signum: int, frame: FrameType | None) -> None:
    global _INTERRUPTED
    _INTERRUPTED = True
    raise KeyboardInterrupt


@contextmanager
def installed() -> Iterator[Interrupts]:
    """While inside: SIGINT goes through the recording handler, and a ``KeyboardInterrupt`` dropped by a
    finaliser is not printed (``sys.unraisablehook``; :func:`check` raises it again). Both are restored on exit.
    Outside the main thread nothing is installed. On exit the recorded flag is copied into the yielded
    :class:`Interrupts` and cleared, so nothing leaks into later work in the same process."""
    global _INTERRUPTED, _ACTIVE
    state = Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    _INTERRUPTED, _ACTIVE = False, True
    old_signal = signal.signal(signal.SIGINT, _handler)
    old_hook: Callable[[Any], Any] = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # recorded by _handler; check() raises it where it can propagate
        old_hook(unraisable)

    sys.unraisablehook = hook
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, old_signal)
        sys.unraisablehook = old_hook
        state.seen = _INTERRUPTED
        _INTERRUPTED, _ACTIVE = False, False


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a Ctrl-C was recorded inside :func:`installed` (one a finaliser may have
    swallowed)."""
    if _ACTIVE and _INTERRUPTED:
        raise KeyboardInterrupt
