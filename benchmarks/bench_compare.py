"""Wall time of a whole `pvq compare` on the bundled MobileNetV2 (the `make demo` run), from scratch.

Target (issue 6): under 5 minutes on a 2-core machine. Prints the stage times from the run's
summary.json, the wall time of the command, and, as a same-run reference, the time of one torch.sort
of every conv/linear weight (the floor of any exact per-tensor sweep).

    .venv/bin/python benchmarks/bench_compare.py [--source mobilenet_v2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from pvq.models import load_weights


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="mobilenet_v2")
    args = ap.parse_args()
    ws = load_weights(args.source)
    t = time.perf_counter()
    for name in ws:
        torch.sort(ws[name].reshape(-1))
    sort_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pvq", "compare", args.source, "--out", str(out), "--quiet"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t
        stages = json.loads((out / "summary.json").read_text())["seconds"]
    print(
        f"pvq compare {args.source}: {wall:.1f} s wall (target < 300 s: {'PASS' if wall < 300 else 'FAIL'})"
    )
    print("stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print(
        f"reference: one torch.sort of all {ws.num_params():,} weights: {sort_s:.2f} s; tensor stage / sort = {stages['tensors'] / sort_s:.0f}x"
    )


if __name__ == "__main__":
    main()
