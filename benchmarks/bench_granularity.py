"""Benchmark: granularity in the per-tensor comparison (``pvq compare --granularity``), measured in one run.

Default: for each model, ``pvq compare``'s tensor stage (no layer stage, no --eval) twice in this process,
with ``--granularity ''`` (the paper's per-tensor comparison only: the reference) and with the default
``tensor,channel,g128``; prints both stage times and their ratio, and per granularity at ``--report-bits``
how many tensors quantization wins against magnitude pruning at equal real bits per weight, with the 95 %
Wilson interval, the mean real bits and the median SNRs.

``--scales``: the choice of scale search for the granular columns. int4 per channel and g128 on every tensor:
wall time of pvq.apply's ``rtn`` (``quantize_rtn``: 32 + 8 clipping ratios, FP16 scales), of the sweep's
``per_channel_quant_sse`` (24 + 8 fixed-point steps) and of a certified ``optimal_scale`` per group
(extrapolated from at most 64 sampled groups per tensor), and the squared error of the first two over
the certified optimum on those sampled groups (mean over tensors).

``--sweep``: the same on the bare sweep (``pvq.tensors.sweep``, what ``pvq tensors`` runs) at ``--bits``,
with ``--granularity`` (default ``tensor,channel,g128``; e.g. ``tensor,uint:tensor,channel,uint:channel``).

    .venv/bin/python benchmarks/bench_granularity.py [--models mobilenet_v2,minilm] [--scales] [--threads 1]
    .venv/bin/python benchmarks/bench_granularity.py --sweep --models smollm2 --bits 4
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def compare_cost(model: str, bits: int, work: Path) -> None:
    from pvq.compare import DEFAULT_GRANULARITY, CompareConfig, run_compare

    secs: dict[str, float] = {}
    for label, gran in (("per-tensor only", ()), (",".join(DEFAULT_GRANULARITY), DEFAULT_GRANULARITY)):
        out = work / f"{model}-{len(gran)}"
        shutil.rmtree(out, ignore_errors=True)
        res = run_compare(CompareConfig(source=model, out=out, layers=0, eval=False, granularity=gran))
        secs[label] = res.seconds["tensors"]
        print(f"{model}: tensor stage [{label}] {res.seconds['tensors']:.1f} s ({len(res.records)} tensors)")
        _print_summary(res.granularity_summary, bits)
    a, b = secs.values()
    print(f"{model}: ratio with granularity / per-tensor only: {b / a:.2f}")


def _print_summary(summary: list[dict], bits: int) -> None:
    for s in summary:
        if s["bits"] != bits:
            continue
        print(
            f"  {s['recipe']:>16}: {s['mean_real_bits']:.3f} real bits/w, quantization wins "
            f"{s['quant_wins']}/{s['tensors']} (95 % Wilson {s['quant_win_low']:.3f}-{s['quant_win_high']:.3f}), "
            f"median SNR {s['median_quant_snr_db']:.2f} vs {s['median_prune_snr_db']:.2f} dB; "
            f"paper accounting {s['quant_wins_paper']}/{s['tensors']}; pruning keeps nothing in "
            f"{s['prune_keeps_nothing']}"
        )


def sweep_cost(model: str, bits: list[int], granularity: str) -> None:
    from pvq.models import load_weights
    from pvq.tensors import sweep

    ws = load_weights(model)
    ws = {n: ws[n] for n in ws if ws[n].numel() > 1}
    t0 = time.perf_counter()
    sweep(ws, bits=bits)
    a = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = sweep(ws, bits=bits, granularities=granularity)
    b = time.perf_counter() - t0
    print(
        f"{model}: sweep bits {bits}, {len(ws)} tensors: per-tensor only {a:.1f} s, with {granularity} {b:.1f} s, ratio {b / a:.2f}"
    )
    for bb in bits:
        _print_summary(res.granularity_summary(), bb)


def _groups(W: torch.Tensor, gs: int) -> np.ndarray:
    """(groups, size) float64 rows of W (rows, cols), padding the last group of a row with zeros."""
    if gs <= 0:
        return W.double().numpy()
    rows, cols = W.shape
    g = -(-cols // gs)
    P = torch.zeros(rows, g * gs, dtype=torch.float64)
    P[:, :cols] = W.double()
    return P.reshape(-1, gs).numpy()


def scale_choice(model: str) -> None:
    from pvq.apply._algorithms import quantize_rtn
    from pvq.models import load_weights
    from pvq.recipes import Quant
    from pvq.tensors import SortedTensor, int_levels, optimal_scale, per_channel_quant_sse

    ws = load_weights(model)
    names = [n for n in ws if ws[n].numel() > 1]
    lv = int_levels(4)
    for gran, gs in (("channel", -1), ("g128", 128)):
        t = dict.fromkeys(("rtn", "pc", "opt"), 0.0)
        ratio = dict.fromkeys(("rtn", "pc"), 0.0)
        for n in names:
            w = ws[n].float()
            W = w.reshape(w.shape[0], -1)
            t0 = time.perf_counter()
            *_, deq = quantize_rtn(W, Quant("int4", gs, "rtn"))
            t["rtn"] += time.perf_counter() - t0
            R = _groups(W, gs)
            t0 = time.perf_counter()
            per_channel_quant_sse(R, lv)
            t["pc"] += time.perf_counter() - t0
            sub = np.arange(R.shape[0])
            if sub.size > 64:
                sub = sub[:: sub.size // 64][:64]
            t0 = time.perf_counter()
            opt = sum(optimal_scale(SortedTensor.from_tensor(R[i].astype(np.float32)), lv).sse for i in sub)
            t["opt"] += (time.perf_counter() - t0) * R.shape[0] / sub.size
            err_rtn = float((_groups(W - deq, gs)[sub] ** 2).sum())
            err_pc = per_channel_quant_sse(R[sub], lv)[0]
            ratio["rtn"] += err_rtn / opt if opt > 0 else 1.0
            ratio["pc"] += err_pc / opt if opt > 0 else 1.0
        k = len(names)
        print(
            f"{model} int4:{gran} ({k} tensors): seconds rtn {t['rtn']:.2f}, per_channel_quant_sse {t['pc']:.2f}, "
            f"optimal_scale ~{t['opt']:.1f} (extrapolated); squared error / certified optimum on sampled groups: "
            f"rtn {ratio['rtn'] / k:.4f}, per_channel_quant_sse {ratio['pc'] / k:.4f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mobilenet_v2,minilm")
    ap.add_argument("--report-bits", type=int, default=4)
    ap.add_argument("--scales", action="store_true", help="measure the scale searches instead")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sweep", action="store_true", help="time the bare sweep instead of compare's stage")
    ap.add_argument("--bits", default="2-8", help="--sweep: bit-widths, 2-8 or a list 2,4")
    ap.add_argument("--granularity", default="tensor,channel,g128", help="--sweep: granularities")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        for m in filter(None, args.models.split(",")):
            if args.scales:
                scale_choice(m)
            elif args.sweep:
                lo, _, hi = args.bits.partition("-")
                bits = list(range(int(lo), int(hi) + 1)) if hi else [int(b) for b in args.bits.split(",")]
                sweep_cost(m, bits, args.granularity)
            else:
                compare_cost(m, args.report_bits, Path(tmp))


if __name__ == "__main__":
    main()
