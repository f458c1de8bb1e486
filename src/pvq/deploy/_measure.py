"""Latency and peak memory of a callable, in this process.

Latency: ``warmup`` untimed calls, then ``repeats`` timed calls (``time.perf_counter``); the median in ms,
with the interquartile range. :func:`time_pair` times an option interleaved with its reference (FP32), so a
ratio compares calls made under the same load. Threads are pinned by the caller (``torch.set_num_threads`` / ONNX Runtime's
``intra_op_num_threads``) so every option runs on the same cores.

Peak memory: in a fresh Python process (:func:`child_peak_mb`), Linux's resident-set high-water mark
(``VmHWM``) after loading the artifact and running one batch, minus the resident size before loading (MB).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Latency", "child_peak_mb", "time_call", "time_pair"]


@dataclass(frozen=True)
class Latency:
    """``median_ms`` over ``repeats`` timed calls; ``q1_ms``/``q3_ms`` the quartiles."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    repeats: int


def time_pair(
    ref: Callable[[], object], fn: Callable[[], object], *, warmup: int = 2, repeats: int = 10
) -> tuple[Latency, Latency]:
    """Median wall times of ``ref()`` and ``fn()`` measured interleaved (ABBA order: ref, fn, fn, ref, ...).

    On a shared machine the load drifts over minutes; timing the reference next to each option, call for
    call, makes their ratio compare like with like (sequential runs were seen to put the same dense network
    at 0.55x of itself under a load average of 16 on 2 cores)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats >= 1 and warmup >= 0 needed, got {repeats}/{warmup}")
    for _ in range(warmup):
        ref()
        fn()
    ts: dict[int, list[float]] = {0: [], 1: []}
    calls = (ref, fn)
    for i in range(repeats):
        for j in (0, 1) if i % 2 == 0 else (1, 0):
            t0 = time.perf_counter()
            calls[j]()
            ts[j].append((time.perf_counter() - t0) * 1e3)
    return _latency(ts[0]), _latency(ts[1])


def _latency(ts: list[float]) -> Latency:
    if len(ts) >= 2:
        q = statistics.quantiles(ts, n=4)
        q1, q3 = q[0], q[2]
    else:
        q1 = q3 = ts[0]
    return Latency(statistics.median(ts), q1, q3, len(ts))


def time_call(fn: Callable[[], object], *, warmup: int = 2, repeats: int = 10) -> Latency:
    """Median wall time of ``fn()`` in ms after ``warmup`` calls."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats >= 1 and warmup >= 0 needed, got {repeats}/{warmup}")
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return _latency(ts)


# The child process: imports only what the runtime needs, records its resident size, loads the artifact and
# runs it once on the saved inputs, then prints the baseline and the high-water mark (kB) as JSON.
_CHILD = r"""
import json, sys
def kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
runtime, artifact, inputs, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
if runtime == "onnxruntime":
    import numpy as np, onnxruntime as ort
    feed = dict(np.load(inputs))
    base = kb("VmRSS")
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    s = ort.InferenceSession(artifact, so, providers=["CPUExecutionProvider"])
    s.run(None, feed)
else:
    import torch
    torch.set_num_threads(threads)
    x = torch.load(inputs)
    base = kb("VmRSS")
    m = torch.load(artifact, weights_only=False)
    with torch.inference_mode():
        m(x) if isinstance(x, torch.Tensor) else m(**x)
print(json.dumps({"base_kb": base, "peak_kb": kb("VmHWM")}))
"""


def child_peak_mb(
    runtime: str, artifact: Path, inputs: Path, threads: int, timeout: float = 600.0
) -> float | None:
    """Peak resident memory (MB) that loading ``artifact`` and running it once on ``inputs`` adds in a fresh
    process: ``VmHWM`` at the end minus ``VmRSS`` after the runtime's imports and the inputs are loaded.

    ``runtime="onnxruntime"``: an ONNX file and an ``.npz`` of named inputs (the child imports no torch);
    ``"torch"``: a whole pickled module (``torch.save(module)``) and a ``.pt`` input (tensor or dict).
    None when the child fails (the caller notes it). A fresh process is used because in-process high-water
    marks miss memory the allocator reuses from earlier work.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, runtime, str(artifact), str(inputs), str(threads)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=True,
        )
        d = json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None
    return max(0.0, (d["peak_kb"] - d["base_kb"]) / 1024.0)
