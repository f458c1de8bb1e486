"""Size of `pvq finetune`'s quantized export: bit-packed safetensors vs the int32 pickle it replaced vs FP32.

LSQ at ``--bits`` on every conv/linear layer of a bundled model (pretrained weights, no fine-tuning: the
file size depends only on the layer shapes and the bit-width), then ``export_quantized``. Prints each
file's size, its ratio to the FP32 state dict measured in the same run, the ideal ``bits/8`` bytes per
weight, and whether the packed file loads back to exactly the same codes.

    .venv/bin/python benchmarks/bench_finetune_export.py [--model mobilenet_v2] [--bits 4]
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import torch


def _pickled_bytes(obj: object) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getbuffer().nbytes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mobilenet_v2")
    ap.add_argument("--bits", type=int, default=4)
    args = ap.parse_args()
    from pvq.models import create_model
    from pvq.training import add_lsq, export_quantized, load_quantized, save_quantized

    model = create_model(args.model, pretrained=True)
    fp32 = _pickled_bytes(model.state_dict())
    add_lsq(model, args.bits)
    ex = export_quantized(model)
    n = sum(v["int"].numel() for v in ex.values())
    old = _pickled_bytes(ex)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "quantized.safetensors"
        save_quantized(path, ex)
        new = path.stat().st_size
        exact = all(torch.equal(ex[k]["int"], v["int"]) for k, v in load_quantized(path).items())
    print(f"{args.model}, int{args.bits} LSQ on {len(ex)} layers, {n} weights")
    print(f"  FP32 state dict (torch.save)        {fp32 / 1e6:8.3f} MB  1.000")
    print(f"  quantized.pt (int32 codes, pickle)  {old / 1e6:8.3f} MB  {old / fp32:.3f}")
    print(f"  quantized.safetensors (packed)      {new / 1e6:8.3f} MB  {new / fp32:.3f}")
    print(f"  ideal bits/8 per weight             {n * args.bits / 8 / 1e6:8.3f} MB  {n * args.bits / 8 / fp32:.3f}")
    print(f"  packed codes load back exactly: {exact}")


if __name__ == "__main__":
    main()
