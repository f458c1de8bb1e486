"""Independent check of pvq.apply on MobileNetV2: per-output-channel RTN written in plain torch (MSE clipping search
over 71 ratios in [0.3, 1], float64), next to ``pvq.apply(..., "intB:channel:rtn")``, both scored with the same
held-out photo views (top-1 agreement and KL to the uncompressed model, 70 views).

    PYTHONPATH=src .venv/bin/python scripts/mobilenet_v2_plain_rtn_check.py

Output of the run in this session: results/cpu/mobilenet_v2_collapse/README.md.
"""

import copy

import torch
from torch import nn

import pvq.apply as pa
from pvq.evaluate import classifier_metrics, photo_views
from pvq.models import create_model, input_spec


def rtn_channel_mse(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric intB per output row, the clipping ratio with the least squared error per row."""
    W = w.reshape(w.shape[0], -1).double()  # (rows, inputs): a depthwise [C, 1, 3, 3] is C rows of 9
    qmax, qmin = 2 ** (bits - 1) - 1, -(2 ** (bits - 1))
    amax = W.abs().amax(1, keepdim=True).clamp_min(1e-12)
    best, best_err = None, None
    for f in torch.linspace(0.3, 1.0, 71):
        s = amax * f / qmax
        q = (W / s).round().clamp(qmin, qmax) * s
        e = ((q - W) ** 2).sum(1, keepdim=True)
        if best is None:
            best, best_err = q.clone(), e
        else:
            better = e < best_err
            best, best_err = torch.where(better, q, best), torch.where(better, e, best_err)
    return best.reshape(w.shape).to(w.dtype)


def plain(ref: nn.Module, bits: int, skip=lambda n, m: False) -> nn.Module:  # noqa: ANN001
    m = copy.deepcopy(ref)
    with torch.no_grad():
        for n, mod in m.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)) and not skip(n, mod):
                mod.weight.copy_(rtn_channel_mse(mod.weight, bits))
    return m


def main() -> None:
    torch.set_num_threads(1)
    ref = create_model("mobilenet_v2").eval()
    spec = input_spec("mobilenet_v2")
    x = photo_views(spec.mean, spec.std, spec.size, spec.resize)

    def show(tag: str, m: nn.Module) -> None:
        rows = classifier_metrics(m, ref, x)
        print(f"{tag:40s}", "  ".join(f"{r[0]}={r[1]:.3f}" for r in rows), flush=True)

    for b in (8, 6, 4):
        show(f"plain int{b} ch mse", plain(ref, b))
    show("plain int4 ch mse, dw kept", plain(ref, 4, lambda n, m: isinstance(m, nn.Conv2d) and m.groups > 1))
    show("pvq int4:channel:rtn", pa.apply(ref, "int4:channel:rtn").module)
    show("pvq int8:channel:rtn", pa.apply(ref, "int8:channel:rtn").module)


if __name__ == "__main__":
    main()
