"""Benchmark: peak memory of the per-tensor sweep on one large tensor (issue 18 D4).

Writes one float32 tensor of ``--elements`` weights (default 200 M, an 800 MB file) as a safetensors
file into a temporary folder (in chunks, so this process stays small), then runs
``pvq tensors FILE --bits 4 --json`` in a subprocess under ``/usr/bin/time -v`` and reads its peak
resident set size. The same command on a 1-element file gives the baseline (interpreter + imports);
the figure of merit is (peak - baseline) / elements, in bytes per weight, next to the file size.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_memory.py [--elements 200000000] [--range-search optimal]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_safetensors(path: Path, name: str, shape: tuple[int, ...], seed: int = 0) -> int:
    """A one-tensor F32 safetensors file of N(0, 0.02^2) weights, written in chunks; returns its size."""
    n = int(np.prod(shape))
    header = json.dumps({name: {"dtype": "F32", "shape": list(shape), "data_offsets": [0, 4 * n]}}).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header to 8 bytes
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for a in range(0, n, 1 << 24):
            f.write((rng.standard_normal(min(1 << 24, n - a), dtype=np.float32) * 0.02).tobytes())
    return path.stat().st_size


def peak_rss(cmd: list[str]) -> tuple[int, float]:
    """Peak resident set size in bytes (``/usr/bin/time -v``) and wall seconds of a command."""
    t0 = time.perf_counter()
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=os.environ.copy())
    secs = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    if m is None:
        sys.exit("/usr/bin/time -v printed no 'Maximum resident set size'")
    return int(m.group(1)) * 1024, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=int, default=200_000_000)
    ap.add_argument("--range-search", default="optimal", choices=("optimal", "grid"))
    ap.add_argument("--bits", default="4")
    args = ap.parse_args()
    if not Path("/usr/bin/time").exists():
        sys.exit("needs /usr/bin/time (GNU time)")
    cols = 10_000 if args.elements >= 10_000 else 1
    shape = (args.elements // cols, cols)
    n = shape[0] * shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        big, tiny = Path(tmp) / "big.safetensors", Path(tmp) / "tiny.safetensors"
        size = write_safetensors(big, "fc.weight", shape)
        write_safetensors(tiny, "fc.weight", (1, 1))
        cmd = [sys.executable, "-m", "pvq", "tensors"]
        opts = ["--bits", args.bits, "--range-search", args.range_search, "--json"]
        base, _ = peak_rss([*cmd, str(tiny), *opts])
        peak, secs = peak_rss([*cmd, str(big), *opts])
    print(
        f"tensor: {n:,} float32 weights {shape}, file {size / 1e6:,.1f} MB; pvq tensors --bits {args.bits} "
        f"--range-search {args.range_search}: {secs:.1f} s"
    )
    print(f"baseline RSS (interpreter + imports, 1-element file): {base / 1e6:,.1f} MB")
    print(
        f"peak RSS: {peak / 1e6:,.1f} MB; above baseline: {(peak - base) / 1e6:,.1f} MB "
        f"= {(peak - base) / n:.2f} bytes per weight (file: {size / n:.2f} bytes per weight)"
    )


if __name__ == "__main__":
    main()
