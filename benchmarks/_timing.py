"""Timing helper shared by the benchmark scripts (run as `python benchmarks/bench_*.py`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["best_of"]


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    """The shortest wall time in seconds of ``repeats`` calls of ``fn`` (the least noisy estimate)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
