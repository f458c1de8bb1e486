"""Which MobileNetV2 layers make low-bit uniform quantization collapse: ``pvq.apply`` with a plan that keeps one class
of layers (depthwise 3x3, first conv, classifier) at int8:channel:rtn, or compresses only the depthwise layers,
scored by top-1 agreement (Wilson 95 %) and KL to the uncompressed model on the 70 held-out photo views.
Calibration (GPTQ): 8 batches of 8 crops from the calibration part of scikit-learn's photos.

    PYTHONPATH=src .venv/bin/python scripts/mobilenet_v2_layer_classes.py

Output of the run in this session: results/cpu/mobilenet_v2_collapse/README.md.
"""

import time

import torch
from torch import nn

import pvq.apply as pa
from pvq.evaluate import classifier_metrics, photo_views
from pvq.models import calibration_batches, create_model, input_spec
from pvq.recipes import Plan, parse_recipe


def layer_class(name: str, m: nn.Module) -> str:
    if name == "features.0.0":
        return "first"
    if name.startswith("classifier"):
        return "classifier"
    if isinstance(m, nn.Conv2d) and m.groups > 1:
        return "depthwise"
    return "pointwise"


def main() -> None:
    torch.set_num_threads(1)
    ref = create_model("mobilenet_v2").eval()
    spec = input_spec("mobilenet_v2")
    x = photo_views(spec.mean, spec.std, spec.size, spec.resize)
    cal = calibration_batches("mobilenet_v2", 8, disjoint=True)
    mods = {n: m for n, m in ref.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    count: dict[str, int] = {}
    for n, m in mods.items():
        count[layer_class(n, m)] = count.get(layer_class(n, m), 0) + m.weight.numel()
    print("params by class", count)

    def run(tag: str, default: str, override: dict[str, str]) -> None:
        plan = Plan(
            {f"{n}.weight": parse_recipe(override[layer_class(n, m)]) for n, m in mods.items() if layer_class(n, m) in override},
            parse_recipe(default),
        )
        t = time.time()
        cm = pa.apply(ref, plan, cal)
        r = classifier_metrics(cm.module, ref, x)
        print(
            f"{tag:50s} bits={cm.bits_per_weight:.3f} agree={r[0][1]:.3f} [{r[0][4]:.2f},{r[0][5]:.2f}] "
            f"kl={r[1][1]:.3f} ({time.time() - t:.0f}s)",
            flush=True,
        )

    int8 = "int8:channel:rtn"
    for q in ("int4:channel:rtn", "int3:channel:rtn", "int3:g128:gptq"):
        run(f"{q} all", q, {})
        run(f"{q}, depthwise {int8}", q, {"depthwise": int8})
        run(f"{q}, first+classifier int8", q, {"first": int8, "classifier": int8})
        run(f"{q}, dw+first+classifier int8", q, {"depthwise": int8, "first": int8, "classifier": int8})
        run(f"{q} on depthwise only", "none", {"depthwise": q})


if __name__ == "__main__":
    main()
