"""Wall time of `pvq compare --eval` (the default) on a bundled model, from scratch, against its target.

Targets (issue 13): MobileNetV2 <= 10 minutes, SmolLM2 <= 30 minutes on this 2-core machine. Prints the wall time
and its ratio to the target, the CPU time the command used (on a shared machine, CPU seconds / wall seconds below
the core count means it waited for the CPU), the stage times from summary.json and the slowest evaluated recipes.

Reference measured in the same run, first: ``pvq evaluate SOURCE --recipe int8:channel:rtn`` (load, one
calibration-free apply, one evaluation), timed the same way. The compare run is printed as a multiple of it, a
ratio that moves much less with the machine's load than the wall time does.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_compare_eval.py [--source mobilenet_v2] [--out DIR]

``--out DIR`` keeps the run's folder (and resumes an interrupted one: the time then covers only what was left).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = {"mobilenet_v2": 600.0, "smollm2": 1800.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="mobilenet_v2")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("extra", nargs="*", help="more pvq compare options (after --)")
    args = ap.parse_args()
    target = TARGET_S.get(args.source)
    ref_cmd = [sys.executable, "-m", "pvq", "evaluate", args.source, "--recipe", "int8:channel:rtn", "--json"]
    ref_wall, ref_cpu = _timed(ref_cmd)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "out"
        cmd = [sys.executable, "-m", "pvq", "compare", args.source, "--out", str(out), "--quiet", *args.extra]
        wall, cpu = _timed(cmd)
        summary = json.loads((out / "summary.json").read_text())
        rows = json.loads((out / "eval.json").read_text()) if (out / "eval.json").exists() else []
    print(f"reference: {' '.join(ref_cmd[1:])}: {ref_wall:.0f} s wall, {ref_cpu:.0f} s CPU")
    print(f"command: {' '.join(cmd[1:])}")
    print(f"ratio to the reference: {wall / ref_wall:.1f}x wall, {cpu / max(ref_cpu, 1e-9):.1f}x CPU")
    if target is None:
        print(f"pvq compare --eval {args.source}: {wall:.0f} s wall (no target for this model)")
    else:
        print(
            f"pvq compare --eval {args.source}: {wall:.0f} s wall; ratio to the {target:.0f} s target: "
            f"{wall / target:.2f} ({'PASS' if wall <= target else 'FAIL'})"
        )
    print(f"CPU time of the command: {cpu:.0f} s ({cpu / wall:.2f} cores busy on average; {os.cpu_count()} cores here)")
    cores = os.cpu_count() or 1
    print(
        f"idle-machine estimate: CPU {cpu:.0f} s / {cores} cores = {cpu / cores:.0f} s (a lower bound on an idle machine; "
        f"{cpu:.0f} s if single-threaded)"
        + (f"; ratio to the target {cpu / cores / target:.2f}-{cpu / target:.2f}" if target else "")
    )
    print("stages (s): " + ", ".join(f"{k} {v:.0f}" for k, v in summary["seconds"].items()))
    per = {r["recipe"]: r["seconds"] for r in rows}
    print(f"{len(per)} models evaluated; slowest: " + ", ".join(f"{k} {v:.0f} s" for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:5]))


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of running ``cmd`` to completion."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


if __name__ == "__main__":
    main()
