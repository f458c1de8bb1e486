"""Step time of compression-aware fine-tuning vs plain fine-tuning (same model, batch, thread count).

Prints the mean optimizer-step time of: plain (no parametrization), LSQ QAT (4 bits), masked pruning
(sparsity 0.75, masks fixed) and both, and each one's ratio to plain, measured in the same run with the
runs interleaved (so load on a shared machine affects all alike).

    .venv/bin/python benchmarks/bench_training.py [--device cuda] [--steps 20] [--model small_resnet|mobilenet_v2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn


def build(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    if name == "small_resnet":
        from pvq.models._small_resnet import SmallResNet

        return SmallResNet((16, 32, 64)), (1, 28, 28)
    from pvq.models import create_model

    return create_model(name, pretrained=False), (3, 224, 224)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="small_resnet")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    from pvq.training import add_lsq, add_masks, lsq_scale_parameters, set_sparsity

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base, shape = build(args.model)
    models = {}
    for method in ("plain", "quant", "prune", "both"):
        m = _copy(base).to(args.device)
        if method in ("prune", "both"):
            add_masks(m)
            set_sparsity(m, 0.75)
        if method in ("quant", "both"):
            add_lsq(m, 4)
        scales = {id(p) for p in lsq_scale_parameters(m)}
        opt = torch.optim.SGD([p for p in m.parameters() if id(p) not in scales], lr=1e-3, momentum=0.9)
        sopt = torch.optim.Adam(lsq_scale_parameters(m), lr=1e-5) if scales else None
        models[method] = (m.train(), opt, sopt)
    x = torch.rand(args.batch, *shape, device=args.device)
    y = torch.randint(0, 10, (args.batch,), device=args.device)
    times: dict[str, list[float]] = {k: [] for k in models}
    for i in range(args.steps + 2):
        for k, (m, opt, sopt) in models.items():
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            loss = nn.functional.cross_entropy(m(x)[:, :10], y)
            opt.zero_grad()
            if sopt is not None:
                sopt.zero_grad()
            loss.backward()
            opt.step()
            if sopt is not None:
                sopt.step()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            if i >= 2:  # warm-up
                times[k].append(time.perf_counter() - t0)
    ref = statistics.median(times["plain"])
    print(f"model={args.model} device={args.device} batch={args.batch} threads={args.threads} steps={args.steps}")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"{k:6s} median step {med * 1e3:8.1f} ms   ratio vs plain {med / ref:5.2f}")


def _copy(m: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(m)


if __name__ == "__main__":
    main()
