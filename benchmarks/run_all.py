"""Run every benchmark in turn (`make bench`); each prints its own ratios against a reference in the same run.

Passes each script its quick options where it has them so the whole run stays within minutes; run a
script by hand for its full version (e.g. `python benchmarks/bench_layerwise.py --full`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ["bench_theory.py"],
    ["bench_tensors.py"],
    ["bench_models.py"],
    ["bench_layerwise.py", "--quick"],
    ["bench_training.py"],
    ["bench_finetune_export.py"],
    ["bench_compare.py"],
]


def main() -> int:
    failed = []
    for script, *args in RUNS:
        print(f"\n===== {script} {' '.join(args)}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script), *args]).returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
