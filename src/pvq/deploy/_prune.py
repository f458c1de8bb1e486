"""Structured channel pruning with ``torch-pruning``: whole output channels/filters (and the input channels of
every layer that consumes them) are removed, so the result is a genuinely smaller dense network.

torch-pruning traces the model once and builds its dependency graph (residual adds, depthwise convs, batch
norms, concatenations couple channels across layers); pruning a group removes the coupled channels together,
which is what keeps the network valid. pvq asks for a parameter budget: the pruner steps in small increments
(L1-magnitude importance, the same ratio per layer) until the conv/linear weights left are at most
``keep`` of the original count. Channel counts are kept multiples of ``round_to`` (default 8, torch-pruning's
``round_to``): ONNX Runtime's CPU layout optimizer (its NchwcTransformer, graph level ORT_ENABLE_ALL) runs a conv
in the blocked NCHWc layout only when its output channels (and its input channels, unless fewer than one block)
are multiples of MLAS's NCHWc block size; any other conv stays in plain NCHW with reorders around it. Measured on
MobileNetV2 at 50 % (``benchmarks/bench_channels_layout.py``; ORT 1.32, 1 thread, this 2-core x86 VM, two runs):
unrounded, 31 of 52 convs fell out of NCHWc (18 reorder nodes instead of 1) and the pruned network ran 1.23-1.25x
*slower* than FP32 at batch 1 (1.06-1.23x at batch 32); with ``round_to=8`` every conv stayed blocked and it ran in
0.45-0.64x (batch 1) / 0.53x (batch 32) of FP32's time, keeping 47.8 % instead of 49.2 % of the weights; with
``round_to=16``, 0.45x / 0.40-0.46x; with the layout optimizer off for both (ORT_ENABLE_EXTENDED) the unrounded
network ran in 0.56-0.70x of FP32. 8 is the default because it suffices here and still lets a 16-channel layer
be halved. The classifier's output layer keeps its classes; for transformer encoders only
the feed-forward hidden channels are pruned (attention heads and the residual width stay), so the budget a
transformer can reach is limited and the result says what was reached.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from pvq.errors import PvqInputError

__all__ = ["ROUND_TO", "StructuredResult", "prunable_weights", "structured_prune"]

_STEPS = 60
ROUND_TO = 8  # channel counts kept multiples of 8: ONNX Runtime's NCHWc block on AVX2 (module docstring)


@dataclass(frozen=True, eq=False)
class StructuredResult:
    """``module``: the pruned copy. ``weights_before``/``weights_after``: conv/linear weight counts;
    ``params_before``/``params_after``: all parameters; ``ratio``: torch-pruning's per-layer channel ratio."""

    module: nn.Module
    weights_before: int
    weights_after: int
    params_before: int
    params_after: int
    ratio: float

    @property
    def kept(self) -> float:
        return self.weights_after / self.weights_before


def prunable_weights(model: nn.Module) -> int:
    """The number of conv/linear weights (what unstructured sparsity is counted over)."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)))


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _ignored(model: nn.Module) -> tuple[list[nn.Module], dict[nn.Module, float] | None]:
    """Layers torch-pruning must not shrink: a transformer encoder keeps everything but its FFN hidden layers;
    other models keep their last linear layer (the classes)."""
    ffn = [
        m.intermediate.dense
        for m in model.modules()
        if hasattr(m, "intermediate") and hasattr(m.intermediate, "dense")
    ]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if ffn:
        keep_ffn = set(map(id, ffn))
        others = [
            m for m in model.modules() if isinstance(m, (nn.Linear, nn.Embedding)) and id(m) not in keep_ffn
        ]
        return others, None
    return linears[-1:], None


def structured_prune(
    model: nn.Module,
    example: torch.Tensor | Mapping[str, torch.Tensor],
    keep: float,
    *,
    round_to: int | None = ROUND_TO,
) -> StructuredResult:
    """A copy of ``model`` with whole channels removed until at most ``keep`` (0 < keep < 1) of its conv/linear
    weights remain (or as close as the prunable layers allow). ``example``: one input (a tensor, or a dict of
    keyword inputs). ``round_to``: every pruned layer keeps a multiple of this many channels (``None``: any
    count; see the module docstring for why 8 is the default)."""
    try:
        import torch_pruning as tp
    except ImportError:
        raise PvqInputError("torch-pruning: not installed (pip install 'pvq[deploy]')") from None
    if not 0.0 < keep < 1.0:
        raise PvqInputError(f"keep: must be in (0, 1), got {keep}")
    if round_to is not None and round_to < 1:
        raise PvqInputError(f"round_to: must be >= 1 or None, got {round_to}")
    m = copy.deepcopy(model).eval()
    w0, p0 = prunable_weights(m), _params(m)
    ignored, _ = _ignored(m)
    ex = example if isinstance(example, torch.Tensor) else dict(example)
    try:
        pruner = tp.pruner.MagnitudePruner(
            m,
            ex,
            importance=tp.importance.MagnitudeImportance(p=1),
            iterative_steps=_STEPS,
            pruning_ratio=0.95,
            ignored_layers=ignored,
            round_to=round_to,
        )
        ratio = 0.0
        for i in range(_STEPS):
            if prunable_weights(m) <= keep * w0:
                break
            pruner.step()
            ratio = 0.95 * (i + 1) / _STEPS
    except PvqInputError:
        raise
    except Exception as exc:
        msg = " ".join(str(exc).split())[:200]
        raise PvqInputError(
            f"structured pruning: torch-pruning cannot prune {type(model).__name__} ({msg})"
        ) from None
    return StructuredResult(m, w0, prunable_weights(m), p0, _params(m), ratio)
