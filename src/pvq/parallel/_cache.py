"""Resumable fan-out: each task's result is appended to a JSON-lines file under its key as soon as it is
done, so an interrupted run redoes only the missing tasks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pvq._io import append_jsonl, read_jsonl
from pvq._progress import progress
from pvq.parallel._executor import Executor, SerialExecutor

__all__ = ["run_cached", "cached_keys"]


def cached_keys(path: str | Path) -> dict[str, Any]:
    """Key -> result of every complete line of the cache file (a truncated last line is ignored)."""
    return {str(r["key"]): r["result"] for r in read_jsonl(path) if "key" in r and "result" in r}


def run_cached(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    keys: Sequence[str],
    cache: str | Path | None = None,
    executor: Executor | None = None,
    desc: str = "tasks",
) -> list[Any]:
    """``[fn(t) for t in tasks]`` via ``executor`` (default: in this process), skipping tasks whose key is
    in ``cache`` (a JSONL file, appended atomically line by line). Results must be JSON-serialisable."""
    if len(keys) != len(tasks):
        raise ValueError("run_cached: keys and tasks differ in length")
    if len(set(keys)) != len(keys):
        raise ValueError("run_cached: keys must be unique")
    if cache is not None:
        cache = Path(cache)  # a torn last line is skipped here and cut off by the first append
    done = cached_keys(cache) if cache is not None else {}
    out: list[Any] = [done.get(k) for k in keys]
    todo = [i for i, k in enumerate(keys) if k not in done]
    ex = executor or SerialExecutor()
    it = ex.imap(fn, [tasks[i] for i in todo])
    for j, res in progress(it, total=len(todo), desc=desc):
        i = todo[j]
        out[i] = res
        if cache is not None:
            append_jsonl(cache, [{"key": keys[i], "result": res}])
    return out
