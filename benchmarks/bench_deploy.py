"""Deployment reality per bundled model: bytes on disk, latency ratio vs FP32 at batch 1 and 32, quality.

    PYTHONPATH=src python benchmarks/bench_deploy.py [--models mobilenet_v2,efficientnet_lite0,minilm,smollm2]
        [--repeats 2] [--warmup 1] [--threads 1] [--lm-batches 1,4] [--out results/cpu/deploy]

One process, one run: for each model, :func:`pvq.deploy.deploy` builds every option, checks it against its
PyTorch counterpart on evaluation inputs, evaluates it on held-out data (:func:`pvq.evaluate.evaluate`) and
times it at batch 1 and 32 (median of ``--repeats`` after ``--warmup``; ratios against FP32 on the same
runtime, measured in the same run). Options:

- ONNX Runtime (every model): fp32 (BN folded), fp16, int8-static (QDQ, calibrated), int8-dynamic,
  prune50:magnitude (unstructured, dense kernels), channels50 (structured, torch-pruning, to the same share of
  conv/linear weights as prune50), 2:4-gpu (skipped without a CUDA GPU); ``--more`` adds prune75:magnitude and
  channels25.
- torch (MiniLM only): fp32, int8-dynamic (torch.ao), int8-weight (torchao, skipped when not installed). Both
  quantize ``nn.Linear`` only, so on the two conv nets they would touch just the classifier and say nothing; they are left out there.
- SmolLM2 (causal LM, ONNX Runtime): fp32, fp16, int8-dynamic, exported without a KV cache (``input_ids`` of a
  fixed 64-token prompt in, logits at every position out); quality is perplexity on held-out text (lower is
  better), the check's agreement is next-token top-1 agreement with PyTorch. Timed at ``--lm-batches`` (default 1
  and 4 prompts of 64 tokens: batch 32 would be 2,048 tokens a call, about a minute each on one shared core).
- channels50 keeps channel counts multiples of 8 (``round_to``); see ``bench_channels_layout.py`` for why.

Writes ``deploy_rows.json`` (every row) and ``bench_deploy.txt`` (the tables) under ``--out``, atomically.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ORT_OPTIONS = (
    "fp32",
    "fp16",
    "int8-static",
    "int8-dynamic",
    "prune50:magnitude",
    "channels50",
    "2:4-gpu",
)
TORCH_OPTIONS = ("fp32", "int8-dynamic", "int8-weight")
# the issue also asks for 75 % sparsity: `--more` adds prune75:magnitude and channels25 (over the 15-minute
# budget on the shared 2-core machine, so not in the default run)
MORE = ("prune75:magnitude", "channels25")


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The closing-note table of one model: option, runtime, bytes, ratio at b1/bN (N its largest batch), quality."""
    by: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["runtime"], r["recipe"]), {})[r["batch"]] = r
    big = max(int(r["batch"]) for r in rows)
    head = [
        "option",
        "runtime",
        "MB",
        "ckpt MB",
        "b1 x fp32",
        f"b{big} x fp32",
        "b1 ms",
        "quality [95% CI]",
        "peak MB",
        "note",
    ]
    lines = [head]
    for (rt, opt), per in by.items():
        r1, r32 = per.get(1), per.get(big)
        r0 = r1 or r32
        if r0 is None:
            continue
        if r0["status"] != "ok":
            lines.append([opt, rt, "-", "-", "-", "-", "-", "-", "-", "skipped: " + r0["note"]])
            continue
        ci = "" if r0["ci_low"] is None else f" [{r0['ci_low']:.2f}, {r0['ci_high']:.2f}]"  # perplexity: none
        q = f"{r0['metric']} {r0['value']:.3f}{ci} n={r0['n']}"
        lines.append(
            [
                opt,
                rt,
                _mb(r0["bytes"]),
                _mb(r0["checkpoint_bytes"]),
                "-" if r1 is None else f"{r1['latency_ratio']:.2f}",
                "-" if r32 is None else f"{r32['latency_ratio']:.2f}",
                "-" if r1 is None else f"{r1['latency_ms']:.1f}",
                q,
                "-" if r0["peak_mb"] is None else f"{r0['peak_mb']:.0f}",
                r0["note"],
            ]
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head) - 1)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line[:-1], widths, strict=True)) + "  " + str(line[-1])
        for line in lines
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mobilenet_v2,efficientnet_lite0,minilm,smollm2")
    ap.add_argument("--lm-batches", default="1,4", help="batch sizes (64-token prompts) for the causal LM")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("results/cpu/deploy"))
    ap.add_argument("--more", action="store_true", help="also prune75:magnitude and channels25")
    args = ap.parse_args()

    import torch

    from pvq._io import atomic_write_text, to_jsonable
    from pvq.deploy import LM_OPTIONS, DeployConfig, deploy
    from pvq.models import create_model

    t_all = time.perf_counter()
    all_rows: list[dict[str, Any]] = []
    text = [
        f"pvq bench_deploy: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), median of {args.repeats} timed calls after {args.warmup} warm-up, batches 1 and 32 "
        f"(smollm2: {args.lm_batches} prompts of 64 tokens)",
        "MB: the file the runtime loads (ONNX; safetensors/pickle for torch); ckpt MB: pvq's compressed-tensors "
        "checkpoint (recipes); quality vs the FP32 PyTorch model on held-out data; peak MB: a fresh "
        "process loading the file and running batch 32",
        "",
    ]
    for name in args.models.split(","):
        t0 = time.perf_counter()
        # SmolLM2 on pvq's own decoder: transformers' LlamaForCausalLM does not export (aten::diff, opset 17)
        model = create_model(name, backend="pvq") if name == "smollm2" else create_model(name)
        ort_opts = ORT_OPTIONS[:-1] + (MORE if args.more else ()) + ORT_OPTIONS[-1:]
        runs = [("onnxruntime", ort_opts)] + ([("torch", TORCH_OPTIONS)] if name == "minilm" else [])
        batches = (1, 32)
        if name == "smollm2":
            runs = [("onnxruntime", LM_OPTIONS)]
            batches = tuple(int(b) for b in args.lm_batches.split(","))
        rows: list[dict[str, Any]] = []
        for runtime, options in runs:
            cfg = DeployConfig(
                batches=batches,
                runtime=runtime,
                threads=args.threads,
                warmup=args.warmup,
                repeats=args.repeats,
            )
            res = deploy(
                model, name, options, cfg, progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True)
            )
            rows += res.to_json()
        all_rows += rows
        block = f"== {name} ({time.perf_counter() - t0:.0f} s)\n{table(rows)}\n"
        print(block, flush=True)
        text.append(block)
        args.out.mkdir(
            parents=True, exist_ok=True
        )  # written after every model: a partial run keeps what it did
        atomic_write_text(
            args.out / "deploy_rows.json", json.dumps([to_jsonable(r) for r in all_rows], indent=1)
        )
        atomic_write_text(args.out / "bench_deploy.txt", "\n".join(text) + "\n")
    total = time.perf_counter() - t_all
    text.append(f"total {total:.0f} s")
    print(f"total {total:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "deploy_rows.json", json.dumps([to_jsonable(r) for r in all_rows], indent=1))
    atomic_write_text(args.out / "bench_deploy.txt", "\n".join(text) + "\n")


if __name__ == "__main__":
    main()
