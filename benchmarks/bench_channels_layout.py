"""Why structured pruning can make a CNN *slower* on ONNX Runtime, and the fix (``round_to``).

    PYTHONPATH=src python benchmarks/bench_channels_layout.py [--model mobilenet_v2] [--keep 0.5]
        [--repeats 7] [--out results/cpu/deploy]

One process: FP32 (BN folded) and three structurally pruned copies (torch-pruning, same ``keep`` of the
conv/linear weights) with channel counts rounded to multiples of 1 (none), 8 and 16. For each: how many convs
ONNX Runtime's layout optimizer put into the blocked NCHWc layout (read from the optimized graph it saves), how
many reorder nodes it added, and latency at batch 1 and 32 as a ratio to FP32 timed interleaved in the same run
(1 thread). Last, the unrounded network vs FP32 with the layout optimizer off (ORT_ENABLE_EXTENDED) for both.
Writes ``channels_layout.txt`` under ``--out``.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--keep", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("results/cpu/deploy"))
    args = ap.parse_args()

    import onnx
    import onnxruntime as ort
    import torch

    from pvq._io import atomic_write_text
    from pvq.deploy import evaluation_inputs, export_onnx, fold_batchnorm, structured_prune, time_pair
    from pvq.models import create_model

    torch.set_num_threads(1)
    folded, _ = fold_batchnorm(create_model(args.model).eval())
    xs = {b: evaluation_inputs(args.model, "image", b).numpy() for b in (1, 32)}
    tmp = Path(tempfile.mkdtemp(prefix="pvq-layout-"))
    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }

    def session(path: Path, level: str) -> tuple[ort.InferenceSession, collections.Counter]:
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        so.graph_optimization_level = levels[level]
        so.optimized_model_filepath = str(path.with_suffix(f".{level}.onnx"))
        so.log_severity_level = 3
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        g = onnx.load(so.optimized_model_filepath).graph
        return s, collections.Counter(f"{n.domain or 'onnx'}:{n.op_type}" for n in g.node)

    def ratio(s0: ort.InferenceSession, s1: ort.InferenceSession, b: int) -> str:
        r, lat = time_pair(
            lambda: s0.run(None, {"x": xs[b]}),
            lambda: s1.run(None, {"x": xs[b]}),
            warmup=2,
            repeats=args.repeats,
        )
        return f"{lat.median_ms / r.median_ms:.2f} ({lat.median_ms:.1f}/{r.median_ms:.1f} ms)"

    x1 = torch.from_numpy(xs[1])
    p0 = export_onnx(folded, x1, tmp / "fp32.onnx")
    s0, c0 = session(p0, "all")
    lines = [
        f"{args.model}: structured pruning to {args.keep:.0%} of conv/linear weights, ONNX Runtime {ort.__version__}, "
        f"1 thread; ratio = option / FP32 median, interleaved, {args.repeats} repeats",
        f"fp32: NCHWc convs {c0['com.microsoft.nchwc:Conv']}, reorders "
        f"{c0['com.microsoft.nchwc:ReorderInput'] + c0['com.microsoft.nchwc:ReorderOutput']}",
    ]
    for rt in (None, 8, 16):
        res = structured_prune(folded, x1, args.keep, round_to=rt)
        convs = [m for m in res.module.modules() if isinstance(m, torch.nn.Conv2d)]
        p = export_onnx(res.module, x1, tmp / f"ch_{rt}.onnx")
        s, c = session(p, "all")
        lines.append(
            f"round_to={rt}: kept {res.kept:.3f} of weights, {sum(m.out_channels % 8 == 0 for m in convs)}/{len(convs)} "
            f"convs with channels % 8 == 0; NCHWc convs {c['com.microsoft.nchwc:Conv']}, reorders "
            f"{c['com.microsoft.nchwc:ReorderInput'] + c['com.microsoft.nchwc:ReorderOutput']}; "
            f"latency x fp32: b1 {ratio(s0, s, 1)}, b32 {ratio(s0, s, 32)}"
        )
        print(lines[-1], flush=True)
        if rt is None:
            e0, _ = session(p0, "extended")
            e1, _ = session(p, "extended")
            unrounded_ext = f"layout optimizer off (ORT_ENABLE_EXTENDED, both): round_to=None x fp32: b1 {ratio(e0, e1, 1)}, b32 {ratio(e0, e1, 32)}"
    lines.append(unrounded_ext)
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "channels_layout.txt", text)


if __name__ == "__main__":
    main()
