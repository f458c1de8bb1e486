"""The deployment options pvq measures, by name, and what each means on each runtime."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pvq.errors import PvqInputError

__all__ = ["DEFAULT_OPTIONS", "LM_OPTIONS", "OPTIONS", "RUNTIMES", "DeployOption", "parse_option"]

RUNTIMES = ("onnxruntime", "torch")


@dataclass(frozen=True)
class DeployOption:
    """``name`` as given; ``kind``: ``fp32``, ``fp16``, ``int8-static``, ``int8-dynamic``, ``int8-weight``,
    ``channels`` (structured pruning keeping ``keep`` of the conv/linear weights), ``semi24`` (2:4 sparse
    kernels, GPU only) or ``recipe`` (a pvq recipe applied with :func:`pvq.apply`, run with dense kernels)."""

    name: str
    kind: str
    keep: float = 1.0


OPTIONS = {
    "fp32": "the uncompressed model (BN folded); every ratio's reference",
    "fp16": "FP16 weights and activations",
    "int8-static": "int8 weights + int8 activations with calibrated ranges (ONNX Runtime QDQ)",
    "int8-dynamic": "int8 weights, activations quantized at run time (ONNX Runtime; torch.ao on torch)",
    "int8-weight": "int8 weight-only (torchao Int8WeightOnlyConfig, linear layers; torch only)",
    "channelsK": "structured channel pruning to K % of the conv/linear weights (torch-pruning), e.g. channels50",
    "2:4-gpu": "2:4 semi-structured sparse kernels (torch to_sparse_semi_structured; needs a CUDA GPU)",
    "RECIPE": "any pvq recipe (prune50:magnitude, int4:g128:rtn...): applied, saved compressed, run dense",
}
DEFAULT_OPTIONS = (
    "fp32",
    "fp16",
    "int8-static",
    "int8-dynamic",
    "int8-weight",
    "prune50:magnitude",
    "prune75:magnitude",
    "channels50",
    "channels25",
    "2:4-gpu",
)

# A causal LM (no KV cache, fixed-length prompt): FP32, FP16 and dynamic int8. Static int8 would calibrate every
# activation of the 30-layer model (the (B, T, 49152) logits included) and structured pruning is set up for CNNs
# and BERT FFNs only, so neither is offered for it.
LM_OPTIONS = ("fp32", "fp16", "int8-dynamic")


def parse_option(name: str) -> DeployOption:
    """An option name -> :class:`DeployOption`; a pvq recipe is checked by :func:`pvq.recipes.parse_recipe`."""
    name = name.strip()
    if name in ("fp32", "fp16", "int8-static", "int8-dynamic", "int8-weight"):
        return DeployOption(name, name)
    if name == "2:4-gpu":
        return DeployOption(name, "semi24")
    m = re.fullmatch(r"channels(\d{1,2})", name)
    if m:
        k = int(m.group(1))
        if not 1 <= k <= 99:
            raise PvqInputError(f"--recipe {name}: channelsK keeps K % of the weights, K in 1..99")
        return DeployOption(name, "channels", k / 100)
    from pvq.recipes import parse_recipe

    try:
        parse_recipe(name)
    except PvqInputError as exc:
        known = ", ".join(k for k in OPTIONS if k not in ("channelsK", "RECIPE"))
        raise PvqInputError(
            f"--recipe {name}: not a deploy option ({known}, channelsK) nor a pvq recipe ({exc})"
        ) from None
    return DeployOption(name, "recipe")
