"""Before/after CPU seconds of pvq.apply.apply for the speed work of issue 12, measured in one run.

    PYTHONPATH=src python results/cpu/apply/speed_before_after.py OLD_SRC [--repeat 1]

OLD_SRC: a `src` folder of the code before (e.g. `git archive 570daa2 src | tar -x -C /tmp/old`, then
/tmp/old/src). Each case runs in its own process (old and new alternating) with torch.set_num_threads(1)
and reports process CPU seconds of the apply call (less sensitive than wall time to a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CASES = [
    ("minilm", "int8:channel:rtn", 0),
    ("minilm", "int4:g128:gptq", 0),
    ("minilm", "prune50:sparsegpt", 0),
    ("smollm2", "int4:channel:rtn", 4),
    ("smollm2", "int4:g128:gptq", 4),
    ("smollm2", "prune50:sparsegpt", 4),
]

CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(1)
import pvq.apply
from pvq.models import calibration_batches, create_model
name, recipe, blocks = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = create_model(name)
if blocks:
    model.model.layers = model.model.layers[:blocks]
    model.config.num_hidden_layers = blocks
nb, bs = (4, 4) if name == "smollm2" else (16, 8)
batches = calibration_batches(name, nb, seed=0, batch_size=bs, seq_len=128, disjoint=True)
pvq.apply.apply(model, "int8:channel:rtn", batches)  # warm-up: imports, compiled kernels
c, t = time.process_time(), time.perf_counter()
res = pvq.apply.apply(model, recipe, batches)
print(json.dumps({"cpu": time.process_time() - c, "wall": time.perf_counter() - t, "bits": res.bits_per_weight}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old_src")
    args = ap.parse_args()
    new_src = os.path.join(os.path.dirname(__file__), "..", "..", "..", "src")
    print("| model | recipe | before CPU s | after CPU s | speed-up |")
    print("|---|---|---|---|---|")
    for name, recipe, blocks in CASES:
        out = {}
        for tag, src in (("old", args.old_src), ("new", new_src)):
            env = dict(os.environ, PYTHONPATH=os.path.abspath(src), OMP_NUM_THREADS="1")
            r = subprocess.run(
                [sys.executable, "-c", CHILD, name, recipe, str(blocks)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            out[tag] = json.loads(r.stdout.strip().splitlines()[-1])
        what = f"{name} (first {blocks} blocks)" if blocks else name
        print(
            f"| {what} | `{recipe}` | {out['old']['cpu']:.1f} | {out['new']['cpu']:.1f} | "
            f"{out['old']['cpu'] / out['new']['cpu']:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
