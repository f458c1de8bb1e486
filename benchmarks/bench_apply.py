"""Speed of ``pvq.apply.apply`` (int4 GPTQ on SmolLM2-135M's 210 linear tensors) vs llm-compressor's ``oneshot``.

    PYTHONPATH=src python benchmarks/bench_apply.py [--quick] [--threads 1]
        [--reference-python benchmarks/.venv-llmc/bin/python]

Measured in one run, on the same CPU, thread count and calibration tokens (16 windows of 128 tokens from the
calibration part of the bundled text, ``calibration_batches(..., disjoint=True)``):

- pvq: ``pvq.apply.apply(model, "int4:g64:gptq", batches)``, the whole job: sequential capture of every
  layer's input Hessian from the partly compressed model (block inputs cached), MSE scale search, GPTQ with
  act-order and 1 % damping, dequantized model copy. ``int4:g128:gptq`` is timed too.
- llm-compressor (``oneshot`` with ``GPTQModifier``, int4 symmetric, groups of 64, min-max scales, act-order
  ``static``, 1 % damping, its ``sequential`` pipeline), in its own virtual environment
  (``--reference-python``; ``make bench-env`` builds it; it is not a pvq dependency). Its GPTQ solver time
  alone is also measured by wrapping its ``quantize_weight``.
- both as wall seconds and as CPU seconds of the process (``time.process_time``; less sensitive to other
  jobs on a shared machine), with the ratio pvq / llm-compressor for each (target: <= 2).
- output error of each layer, ``tr((W - Q) H (W - Q)^T) / tr(W H W^T)``, summed over layers, with ``H`` of
  the uncompressed model on *other* windows of the text (seed 1), so fitting the calibration set is not
  rewarded.

The comparison is at groups of 64: llm-compressor 0.14 refuses groups of 128 on SmolLM2's 576 inputs
("columns not divisible by group_size"; with ``bypass_divisibility_checks=True`` its observer fails in
``unflatten(-1, (-1, 128))``). ``--quick``: the first 6 of the 30 decoder blocks only (42 tensors), for both.
Results of a run: ``results/cpu/bench_apply.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RECIPE = "int4:g128:gptq"
REF_GROUP = 64  # the group size compared with llm-compressor (it cannot do g128 on 576 inputs)
REF_RECIPE = f"int4:g{REF_GROUP}:gptq"


def _llmc_worker(folder: Path, threads: int) -> None:
    """Runs in the reference environment: llm-compressor's oneshot GPTQ on the saved HF model."""
    import torch

    torch.set_num_threads(threads)
    import llmcompressor.modifiers.gptq.base as gptq_base
    from llmcompressor import oneshot
    from llmcompressor.modifiers.gptq import GPTQModifier
    from transformers import AutoModelForCausalLM

    solve = [0.0]
    inner = gptq_base.quantize_weight

    def timed(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        out = inner(*a, **k)
        solve[0] += time.perf_counter() - t0
        return out

    gptq_base.quantize_weight = timed
    ids = torch.load(folder / "calib_ids.pt")
    model = AutoModelForCausalLM.from_pretrained(folder / "hf", dtype=torch.float32)
    loader = torch.utils.data.DataLoader(
        [{"input_ids": row[None, :], "attention_mask": torch.ones_like(row)[None, :]} for row in ids],
        batch_size=None,
    )
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme

    # int4 symmetric, groups of 64, min-max scales, act-order "static" (llm-compressor's default).
    # Not W4A16 (groups of 128): SmolLM2 has 576 inputs (4.5 groups of 128) and llm-compressor 0.14 refuses
    # ragged groups (and with bypass_divisibility_checks=True its observer fails on unflatten(-1, 128)).
    args = QuantizationArgs(num_bits=4, type="int", symmetric=True, strategy="group", group_size=REF_GROUP)
    scheme = QuantizationScheme(targets=["Linear"], weights=args)
    recipe = GPTQModifier(config_groups={"group_0": scheme}, ignore=["lm_head"])
    t0, c0 = time.perf_counter(), time.process_time()
    oneshot(
        model=model, dataset=loader, recipe=recipe, num_calibration_samples=len(ids), pipeline="sequential"
    )
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    weights = {
        n: m.weight.detach().float()
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and n.startswith("model.layers.")
    }
    torch.save(weights, folder / "llmc_weights.pt")
    import llmcompressor

    print(
        json.dumps(
            {"total_s": total, "cpu_s": cpu, "solve_s": solve[0], "version": llmcompressor.__version__}
        )
    )


def _capture(model: Any, ids: Any) -> dict[str, Any]:
    """H = sum x x^T (float32) of every linear in model.model.layers, from the uncompressed model."""
    import torch

    H: dict[str, torch.Tensor] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.startswith("model.layers."):

            def hook(m: Any, inp: Any, out: Any, name: str = name) -> None:
                x = inp[0].detach().reshape(-1, inp[0].shape[-1]).float()
                H[name] = H.get(name, 0) + x.T @ x

            hooks.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        for b in ids.split(8):
            model.model(input_ids=b)  # the decoder only: lm_head's output is not needed
    for h in hooks:
        h.remove()
    return H


def _rel_err(W: Any, Q: Any, H: Any) -> float:
    D = (W - Q).double()
    Wd = W.double()
    Hd = H.double()
    return float((D @ Hd * D).sum() / (Wd @ Hd * Wd).sum())


def _run_reference(args: argparse.Namespace, model: Any, ids: Any) -> dict[str, Any] | None:
    """llm-compressor's oneshot in its own environment on the same (possibly truncated) model and tokens."""
    import torch

    if not (args.reference_python and Path(args.reference_python).exists()):
        print(
            f"no reference python at {args.reference_python!r}: llm-compressor not run (make bench-env builds it)"
        )
        return None
    with tempfile.TemporaryDirectory(prefix="pvq-bench-apply-") as tmp:
        folder = Path(tmp)
        model.save_pretrained(folder / "hf")
        from transformers import PreTrainedTokenizerFast

        from pvq.models import get_tokenizer

        # llm-compressor's oneshot insists on a processor in the folder, even for tokenised data
        PreTrainedTokenizerFast(tokenizer_object=get_tokenizer("smollm2")).save_pretrained(folder / "hf")
        torch.save(ids, folder / "calib_ids.pt")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        cmd = [args.reference_python, __file__, "--llmc-worker", str(folder), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
        if proc.returncode != 0:
            print(f"llm-compressor failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            return None
        ref: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        ref["weights"] = torch.load(folder / "llmc_weights.pt")
        return ref


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=16, help="calibration sequences")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="torch threads, for both pvq and the reference")
    ap.add_argument("--quick", action="store_true", help="the first 6 decoder blocks only (both sides)")
    ap.add_argument(
        "--reference-python",
        default="benchmarks/.venv-llmc/bin/python",
        help="python with llmcompressor (make bench-env builds it)",
    )
    ap.add_argument("--llmc-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.llmc_worker:
        _llmc_worker(Path(args.llmc_worker), args.threads)
        return

    import torch

    import pvq.apply
    from pvq.models import create_model
    from pvq.models._calibration import calibration_batches

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    model = create_model("smollm2", backend="transformers")
    if args.quick:
        model.model.layers = model.model.layers[:6]
        model.config.num_hidden_layers = 6
    nb = max(1, args.samples // 8)
    batches = calibration_batches("smollm2", n=nb, seed=0, batch_size=8, seq_len=args.seq_len, disjoint=True)
    ids = torch.cat([b["input_ids"] for b in batches])  # type: ignore[index]
    held = calibration_batches("smollm2", n=nb, seed=1, batch_size=8, seq_len=args.seq_len, disjoint=True)
    H_eval = _capture(model, torch.cat([b["input_ids"] for b in held]))  # type: ignore[index]
    weights = {n: m.weight.detach().float().clone() for n, m in model.named_modules() if n in H_eval}
    print(
        f"SmolLM2-135M{' (first 6 blocks, --quick)' if args.quick else ''}: {len(weights)} linear tensors, "
        f"{ids.shape[0]} x {ids.shape[1]} calibration tokens, {args.threads} torch thread(s)"
    )
    # warm-up: numba kernels loaded from their cache (or compiled, the first time) outside the timings
    w_up = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    pvq.apply.compress_matrix("warm-up", w_up, REF_RECIPE, (w_up.T @ w_up).double())

    results: dict[str, dict[str, Any]] = {}
    for recipe in (REF_RECIPE, RECIPE):
        c0, t0 = time.process_time(), time.perf_counter()
        res = pvq.apply.apply(model, recipe, batches)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        mods = dict(res.module.named_modules())
        errs = {n: _rel_err(W, mods[n].weight.detach().float(), H_eval[n]) for n, W in weights.items()}
        results[f"pvq.apply {recipe}"] = {"wall_s": wall, "cpu_s": cpu, "solve_s": float("nan"), "errs": errs}
        print(f"pvq.apply {recipe}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
        del res, mods

    ref = _run_reference(args, model, ids)
    if ref is not None:
        key = f"llm-compressor {ref['version']} oneshot GPTQ int4 g{REF_GROUP}"
        ref["errs"] = {n: _rel_err(weights[n], ref["weights"][n].float(), H_eval[n]) for n in weights}
        results[key] = {
            "wall_s": ref["total_s"],
            "cpu_s": ref["cpu_s"],
            "solve_s": ref["solve_s"],
            "errs": ref["errs"],
        }

    print("\n| method | wall s | CPU s | GPTQ solver s | sum rel. output error (held-out H) |")
    print("|---|---|---|---|---|")
    for key, r in results.items():
        print(
            f"| {key} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['solve_s']:.1f} | {sum(r['errs'].values()):.4f} |"
        )
    if ref is not None:
        same = results[f"pvq.apply {REF_RECIPE}"]
        ours, theirs = same["errs"], ref["errs"]
        print(
            f"\nratio pvq.apply {REF_RECIPE} / llm-compressor oneshot (same model, tokens, threads): "
            f"wall {same['wall_s'] / ref['total_s']:.2f}, CPU {same['cpu_s'] / ref['cpu_s']:.2f} (target <= 2)"
        )
        wins = sum(ours[n] <= theirs[n] for n in weights)
        print(f"pvq output error <= llm-compressor's in {wins}/{len(weights)} layers (held-out H)")
    print(f"whole benchmark: {time.perf_counter() - t_start:.0f} s wall")


if __name__ == "__main__":
    sys.exit(main())
