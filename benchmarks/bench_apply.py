"""Speed and output error of ``int4:g128:gptq`` on SmolLM2-135M's 210 linear tensors, vs llm-compressor.

    PYTHONPATH=src python benchmarks/bench_apply.py [--reference-python /work/bench-venv/bin/python]

What is measured, in one run on the same CPU, thread count and calibration tokens:

- pvq: the input Hessian ``H = sum x x^T`` of every linear layer in ``model.model.layers`` is captured
  once, from the *uncompressed* model (one forward pass with hooks; "capture"), then
  :func:`pvq.apply.compress_matrix` compresses each weight ("solve"). The model-level driver
  (``pvq.apply.apply``: sequential capture from the partly compressed model) is written separately; until
  it is wired in here, this times the per-matrix part plus one capture pass.
- llm-compressor (``oneshot`` with ``GPTQModifier(scheme="W4A16")``: int4 symmetric, groups of 128,
  act-order ``static``, 1 % damping, its sequential pipeline), run in its own virtual environment
  (``--reference-python``; it is not a pvq dependency). Its total wall time includes its sequential
  calibration forwards; its GPTQ solver time alone is measured by wrapping its ``quantize_weight``.
- output error of each layer, ``tr((W - Q) H (W - Q)^T) / tr(W H W^T)`` on the uncompressed model's ``H``,
  summed over layers, for pvq (act-order and, with ``--orders``, natural order), pvq's RTN and
  llm-compressor; ``H`` here is captured from the uncompressed model on *other* windows of the text
  (seed 1) than the calibration windows (seed 0), so GPTQ's fit to its calibration set is not rewarded.

Prints a table and the ratios pvq / llm-compressor. The whole run takes a few minutes on 2 cores.
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
    t0 = time.perf_counter()
    oneshot(
        model=model, dataset=loader, recipe=recipe, num_calibration_samples=len(ids), pipeline="sequential"
    )
    total = time.perf_counter() - t0
    weights = {
        n: m.weight.detach().to(torch.float16)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and n.startswith("model.layers.")
    }
    torch.save(weights, folder / "llmc_weights.pt")
    import llmcompressor

    print(json.dumps({"total_s": total, "solve_s": solve[0], "version": llmcompressor.__version__}))


def _capture(model: Any, ids: Any) -> tuple[dict[str, Any], float]:
    """H = sum x x^T (float32) of every linear in model.model.layers, from one forward pass."""
    import torch

    H: dict[str, torch.Tensor] = {}
    hooks = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.startswith("model.layers."):

            def hook(m: Any, inp: Any, out: Any, name: str = name) -> None:
                x = inp[0].detach().reshape(-1, inp[0].shape[-1]).float()
                H[name] = H.get(name, 0) + x.T @ x

            hooks.append(mod.register_forward_hook(hook))
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in ids.split(8):
            model.model(input_ids=b)  # the decoder only: lm_head's output is not needed
    seconds = time.perf_counter() - t0
    for h in hooks:
        h.remove()
    return H, seconds


def _rel_err(W: Any, Q: Any, H: Any) -> float:
    D = (W - Q).double()
    Wd = W.double()
    Hd = H.double()
    return float((D @ Hd * D).sum() / (Wd @ Hd * Wd).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=16, help="calibration sequences")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="torch threads, for both pvq and the reference")
    ap.add_argument(
        "--reference-python", default="/work/bench-venv/bin/python", help="python with llmcompressor"
    )
    ap.add_argument("--orders", action="store_true", help="also run natural order and compare output errors")
    ap.add_argument("--llmc-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.llmc_worker:
        _llmc_worker(Path(args.llmc_worker), args.threads)
        return

    import torch

    from pvq.apply import compress_matrix
    from pvq.models import create_model
    from pvq.models._calibration import calibration_batches
    from pvq.recipes import parse_recipe

    torch.set_num_threads(args.threads)
    model = create_model("smollm2", backend="transformers")
    batches = calibration_batches(
        "smollm2", n=max(1, args.samples // 8), seed=0, batch_size=8, seq_len=args.seq_len
    )
    ids = torch.cat([b["input_ids"] for b in batches])  # type: ignore[index]
    print(f"SmolLM2-135M, {ids.shape[0]} x {ids.shape[1]} calibration tokens, {args.threads} torch threads")
    H, capture_s = _capture(model, ids)
    print(f"pvq capture (one pass, {len(H)} linear layers): {capture_s:.1f} s")
    weights = {n: m.weight.detach().float() for n, m in model.named_modules() if n in H}
    # output errors are measured on other windows of the text (seed 1), not on the calibration tokens
    held = calibration_batches(
        "smollm2", n=max(1, args.samples // 8), seed=1, batch_size=8, seq_len=args.seq_len
    )
    H_eval, _ = _capture(model, torch.cat([b["input_ids"] for b in held]))  # type: ignore[index]

    results: dict[str, dict[str, Any]] = {}
    runs = [RECIPE, REF_RECIPE] + ([RECIPE + ":order=natural"] if args.orders else [])
    for text in runs:
        recipe = parse_recipe(text)
        errs, t0 = {}, time.perf_counter()
        for name, W in weights.items():
            errs[name] = _rel_err(W, compress_matrix(name, W, recipe, H[name]).dequantize(), H_eval[name])
        results[f"pvq {recipe}"] = {"solve_s": time.perf_counter() - t0, "errs": errs}
    rtn = parse_recipe("int4:g128:rtn")
    results[f"pvq {rtn}"] = {
        "solve_s": float("nan"),
        "errs": {
            n: _rel_err(W, compress_matrix(n, W, rtn).dequantize(), H_eval[n]) for n, W in weights.items()
        },
    }

    ref: dict[str, Any] | None = None
    if args.reference_python and Path(args.reference_python).exists():
        with tempfile.TemporaryDirectory(prefix="pvq-bench-apply-") as tmp:
            folder = Path(tmp)
            model.save_pretrained(folder / "hf")
            from transformers import PreTrainedTokenizerFast

            from pvq.models import get_tokenizer

            # llm-compressor's oneshot insists on a processor in the folder, even for tokenised data
            PreTrainedTokenizerFast(tokenizer_object=get_tokenizer("smollm2")).save_pretrained(folder / "hf")
            torch.save(ids, folder / "calib_ids.pt")
            env = {
                **os.environ,
                "HF_HUB_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
            }
            cmd = [
                args.reference_python,
                __file__,
                "--llmc-worker",
                str(folder),
                "--threads",
                str(args.threads),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
            if proc.returncode != 0:
                print(f"llm-compressor failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
            else:
                ref = json.loads(proc.stdout.strip().splitlines()[-1])
                q = torch.load(folder / "llmc_weights.pt")
                ref["errs"] = {n: _rel_err(weights[n], q[n].float(), H_eval[n]) for n in weights}
                results[f"llm-compressor {ref['version']} GPTQ int4 g{REF_GROUP}"] = ref
    else:
        print(f"no reference python at {args.reference_python!r}: llm-compressor not run")

    print(f"\n{'method':44s} {'solve s':>8s} {'total s':>8s} {'sum rel. output error':>22s}")
    for key, r in results.items():
        total = r.get("total_s", r["solve_s"] + capture_s if r["solve_s"] == r["solve_s"] else float("nan"))
        print(f"{key:44s} {r['solve_s']:8.1f} {total:8.1f} {sum(r['errs'].values()):22.4f}")
    act = results[f"pvq {parse_recipe(RECIPE)}"]
    if args.orders:
        nat = results[f"pvq {parse_recipe(RECIPE + ':order=natural')}"]
        wins = sum(act["errs"][n] < nat["errs"][n] for n in weights)
        print(f"act-order lower output error than natural order in {wins}/{len(weights)} layers")
    if ref is not None:
        same = results[f"pvq {parse_recipe(REF_RECIPE)}"]
        print(
            f"ratio pvq {REF_RECIPE} solve / llm-compressor GPTQ solve: {same['solve_s'] / ref['solve_s']:.2f}"
        )
        print(
            f"ratio pvq {REF_RECIPE} (capture + solve) / llm-compressor oneshot total: "
            f"{(same['solve_s'] + capture_s) / ref['total_s']:.2f}"
        )
        wins = sum(same["errs"][n] <= ref["errs"][n] for n in weights)
        print(f"pvq output error <= llm-compressor's in {wins}/{len(weights)} layers (held-out H)")


if __name__ == "__main__":
    sys.exit(main())
