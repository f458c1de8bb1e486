"""A whole per-layer run: capture the chunks of a layer, fan the chunks out, cache rows per chunk."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from pvq._outdir import open_output
from pvq.layerwise._chunk import solve_chunk_task
from pvq.layerwise._problem import ChunkProblem

__all__ = ["run_layer_problems", "task_key"]


def task_key(
    p: ChunkProblem,
    bits: Sequence[int],
    solvers: Mapping[str, Sequence[str]],
    time_limit: float | None,
    seed: int = 0,
) -> str:
    """Cache key of one chunk's job: layer, chunk, and a hash of everything that changes its rows: the
    bit-widths, solvers, time limit and seed, the quantization scales, ``G``, ``W`` and which output rows
    and input columns of the layer they are (rows carry their row ids)."""
    h = hashlib.sha1()
    scales = sorted((int(b), float(s)) for b, s in p.scales.items())
    h.update(
        json.dumps(
            [
                list(map(int, bits)),
                {k: list(v) for k, v in sorted(solvers.items())},
                time_limit,
                int(seed),
                scales,
            ]
        ).encode()
    )
    for a in (p.G, p.W, p.row_ids, p.inputs):
        h.update(
            b"|" if a is None else np.ascontiguousarray(a).tobytes() + repr(np.asarray(a).dtype).encode()
        )
    return f"{p.layer}/{p.chunk}/{h.hexdigest()[:16]}"


def run_layer_problems(
    problems: Sequence[ChunkProblem],
    bits: Sequence[int],
    solvers: Mapping[str, Sequence[str]],
    time_limit: float | None = 60.0,
    cache: str | Path | None = None,
    ray_address: str | None = None,
    workers: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows of every chunk (see :func:`pvq.layerwise.solve_problem`), chunks fanned out by
    :func:`pvq.parallel.get_executor`; with ``cache`` (a JSONL file) finished chunks are skipped."""
    from pvq.parallel import get_executor, run_cached

    tasks = [(p, tuple(bits), {k: tuple(v) for k, v in solvers.items()}, time_limit, seed) for p in problems]
    keys = [task_key(p, bits, solvers, time_limit, seed) for p in problems]
    lock = nullcontext() if cache is None else open_output(Path(cache).parent, arg="cache")
    with lock:  # one writer per cache folder
        ex = get_executor(ray_address, workers if workers is not None else (1 if len(tasks) <= 1 else None))
        try:
            results = run_cached(solve_chunk_task, tasks, keys, cache=cache, executor=ex, desc="chunks")
        finally:
            ex.close()
    return [row for res in results for row in res]
