"""Mixed-precision LSQ from measured sensitivity: per-layer bit-widths for QAT chosen by the evaluation
module's measured plan (:func:`pvq.evaluate._sensitivity.measured_plan`).

Each compressible layer of the trained model is quantized alone with ``int{b}:tensor:rtn`` for every ``b`` in
``choices``; the model-level change (mean KL of the class distributions against the uncompressed model on
``inputs``) is that layer's cost at ``b``. The exact multiple-choice knapsack then picks one width per layer
within the real-bits budget, and the plan is kept only when it measures no worse than every uniform width that
fits (``measured_plan`` falls back to the best uniform otherwise). The widths are what LSQ starts from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from pvq.training._lsq import compressible_layers

__all__ = ["MixedPlan", "sensitivity_layer_bits"]


@dataclass(frozen=True)
class MixedPlan:
    """``layer_bits``: ((layer name, bits), ...) for every compressible layer; ``chosen``: knapsack | uniform
    RECIPE; ``bits``: real bits per weight of the plan; ``value``: its measured KL (nats) on the inputs."""

    layer_bits: tuple[tuple[str, int], ...]
    chosen: str
    bits: float
    value: float


def sensitivity_layer_bits(model: nn.Module, inputs: torch.Tensor, budget_bits: float,
                           choices: Sequence[int] = (2, 3, 4, 5, 6, 8), name: str = "model") -> MixedPlan:
    """Per-layer LSQ widths for ``model`` (a classifier) at ``budget_bits`` real bits per weight (FP16
    per-tensor scales counted). ``inputs``: (N, ...) training or held-out inputs, never the test split.
    Layers the plan leaves uncompressed get 16 bits (LSQ at 16 bits is FP16-equivalent)."""
    from pvq.evaluate._sensitivity import Probe, measure_sensitivity, measured_plan

    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            ref = model(inputs).float()
        probe = Probe("image", name, inputs, ref, "kl", f"tensor:{name}:n={len(inputs)}", len(inputs))
        rows = measure_sensitivity(model, probe, [f"int{b}:tensor:rtn" for b in sorted(set(choices))])
        decision = measured_plan(model, probe, rows, budget_bits)
    finally:
        model.train(was)
    widths = []
    for layer, _ in compressible_layers(model):
        q = decision.plan.recipe_for(f"{layer}.weight").quant  # int-only options: no pruning part
        widths.append((layer, 16 if q is None else int(q.format.removeprefix("int"))))
    return MixedPlan(tuple(widths), decision.chosen, decision.bits, decision.value)
