"""Calibration of the SDP size guard (:func:`pvq.layerwise.sdp_cost`): wall time and peak memory of the
paper's SDP relaxation (CVXPY + Clarabel) at a few small n, each in a fresh process, against the estimate.

Peak memory is the process's maximum RSS minus the RSS right after importing CVXPY and pvq (the import
baseline); time is the solve alone. Prints one line per n and the measured/estimated ratios.

    .venv/bin/python benchmarks/bench_sdp_cost.py              # n = 40, 50, 60, 70 (about a minute)
    .venv/bin/python benchmarks/bench_sdp_cost.py --n 30 60 90
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
import cvxpy  # noqa: F401  (part of the baseline)
from pvq.layerwise import solve_sdp
n, box = int(sys.argv[1]), sys.argv[2] == "1"
rng = np.random.default_rng(0)
X = rng.standard_normal((4 * n, n))
G, w = X.T @ X, rng.standard_normal(n)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.perf_counter()
s = solve_sdp(G, w, 0.3, 4, box=box)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"n": n, "box": box, "seconds": dt, "bytes": peak - base, "status": s.status}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[40, 50, 60, 70])
    ap.add_argument("--box", action="store_true", help="the box-constrained relaxation (sdp_box)")
    args = ap.parse_args()
    from pvq.layerwise import sdp_cost

    print(f"{'n':>4} {'seconds':>8} {'est s':>8} {'ratio':>6} {'MB':>8} {'est MB':>8} {'ratio':>6}  status")
    for n in args.n:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(n), "1" if args.box else "0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        est = sdp_cost(n, box=args.box)
        print(
            f"{n:>4} {r['seconds']:>8.2f} {est.seconds:>8.2f} {r['seconds'] / est.seconds:>6.2f} "
            f"{r['bytes'] / 1e6:>8.0f} {est.bytes / 1e6:>8.0f} {r['bytes'] / est.bytes:>6.2f}  {r['status']}"
        )


if __name__ == "__main__":
    main()
