"""pvq.parallel: serial / process-pool / Ray executors give the same results; the cache resumes."""

from __future__ import annotations

import pytest

from pvq._io import read_jsonl
from pvq.parallel import LocalExecutor, SerialExecutor, cached_keys, get_executor, run_cached


def _square(x: int) -> int:
    return x * x


_CALLS: list[int] = []


def _fail_on_three(x: int) -> int:
    _CALLS.append(x)
    if x == 3:
        raise RuntimeError("interrupted")
    return x + 100


def test_serial_and_pool_agree():
    tasks = list(range(7))
    keys = [f"t{i}" for i in tasks]
    a = run_cached(_square, tasks, keys, executor=SerialExecutor())
    ex = LocalExecutor(workers=2)
    try:
        b = run_cached(_square, tasks, keys, executor=ex)
    finally:
        ex.close()
    assert a == b == [t * t for t in tasks]
    assert isinstance(get_executor(workers=1), SerialExecutor)


def test_cache_resumes_after_interruption(tmp_path):
    cache = tmp_path / "rows.jsonl"
    keys = [f"k{i}" for i in range(5)]
    with pytest.raises(RuntimeError):
        run_cached(_fail_on_three, list(range(5)), keys, cache=cache)
    assert set(cached_keys(cache)) == {"k0", "k1", "k2"}
    with open(cache, "a") as f:
        f.write('{"key": "k4", "res')  # a torn last line from a crash is ignored
    _CALLS.clear()
    out = run_cached(lambda x: x + 100, list(range(5)), keys, cache=cache)
    assert out == [100, 101, 102, 103, 104]
    assert len(list(read_jsonl(cache))) == 5
    with pytest.raises(ValueError):
        run_cached(_square, [1, 2], ["a", "a"])


@pytest.mark.slow
def test_ray_local_instance():
    pytest.importorskip("ray")
    import numpy as np

    from pvq.layerwise import ChunkProblem, solve_chunk_task

    rng = np.random.default_rng(0)
    tasks = []
    for c in range(3):
        X = rng.standard_normal((30, 8))
        p = ChunkProblem("toy", c, X.T @ X, rng.standard_normal((2, 8)), {4: 0.3})
        tasks.append((p, (4,), {"prune": ("exact",), "quant": ("exact",)}, 10.0, 0))
    ex = get_executor("local", workers=2)
    try:
        out = run_cached(solve_chunk_task, tasks, [str(i) for i in range(3)], executor=ex)
    finally:
        ex.close()
    assert out == [solve_chunk_task(t) for t in tasks] or all(
        [r["error"] for r in a] == pytest.approx([r["error"] for r in b])
        for a, b in zip(out, map(solve_chunk_task, tasks), strict=True)
    )
