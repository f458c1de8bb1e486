"""Knowledge distillation for compression fine-tuning (Hinton et al. 2015; FitNets-style feature matching).

The teacher is the uncompressed model (frozen, eval mode). The training loss is

    L = (1 − α) · CE(z_s, y) + α · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T)) + β · mean_l MSE(f_s^l, f_t^l)

with logits z (B, classes), temperature T and, optionally, features f^l = outputs of the named layers.
The T² factor keeps the soft-target gradients on the scale of the hard-label ones (Hinton et al. §2).
Usable for QAT and pruning alike: the student is whatever compressed model is being fine-tuned.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["DistillConfig", "Distiller", "kd_loss", "feature_loss"]


@dataclass(frozen=True)
class DistillConfig:
    """``alpha`` ∈ [0, 1] weighs the KL term against cross-entropy; ``temperature`` T > 0; ``feature_weight``
    β ≥ 0 on the feature-matching term over ``feature_layers`` (module names, same in both models)."""

    alpha: float = 0.5
    temperature: float = 4.0
    feature_weight: float = 0.0
    feature_layers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"kd alpha must be in [0, 1], got {self.alpha}")
        if not self.temperature > 0:
            raise ValueError(f"kd temperature must be > 0, got {self.temperature}")
        if self.feature_weight < 0 or (self.feature_weight > 0 and not self.feature_layers):
            raise ValueError("kd feature_weight must be >= 0, and > 0 only with feature_layers")


class _Capture:
    """Forward hooks storing the outputs of named modules of ``model`` (latest forward only)."""

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        mods = dict(model.named_modules())
        missing = [n for n in names if n not in mods]
        if missing:
            raise ValueError(f"kd feature_layers not in the model: {missing}")
        self.out: dict[str, torch.Tensor] = {}
        self.handles = [mods[n].register_forward_hook(self._hook(n)) for n in names]

    def _hook(self, name: str):  # noqa: ANN202
        def fn(_m: nn.Module, _i: object, o: torch.Tensor) -> None:
            self.out[name] = o

        return fn

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


class Distiller:
    """The KD loss of a student against a frozen copy of ``teacher``: ``loss(student_logits, x, y)``.

    Call it right after the student's forward on ``x`` (feature hooks read that forward's outputs).
    ``close()`` removes the hooks.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, cfg: DistillConfig) -> None:
        self.cfg = cfg
        self.teacher = copy.deepcopy(teacher).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        names = list(cfg.feature_layers) if cfg.feature_weight > 0 else []
        self._t = _Capture(self.teacher, names)
        self._s = _Capture(student, names)

    def __call__(self, student_logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            t_logits = self.teacher(x)
        c = self.cfg
        loss = (1.0 - c.alpha) * nn.functional.cross_entropy(student_logits, y) if c.alpha < 1 else 0.0
        loss = loss + c.alpha * kd_loss(student_logits, t_logits, c.temperature)
        if c.feature_weight > 0:
            loss = loss + c.feature_weight * feature_loss(
                [self._s.out[n] for n in c.feature_layers], [self._t.out[n] for n in c.feature_layers])
        return loss  # type: ignore[return-value]

    def close(self) -> None:
        self._t.remove()
        self._s.remove()


# ---------------------------------------------------------------- pure numeric functions


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T² · KL(softmax(z_t/T) ‖ softmax(z_s/T))`` averaged over the batch; logits (B, C) -> 0-d tensor."""
    t = float(temperature)
    log_p_s = nn.functional.log_softmax(student_logits / t, dim=-1)
    log_p_t = nn.functional.log_softmax(teacher_logits.detach() / t, dim=-1)
    return nn.functional.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * t * t


def feature_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of the mean squared difference of matching feature maps (same shapes)."""
    if len(student) != len(teacher) or not student:
        raise ValueError("feature_loss: need the same non-zero number of student and teacher features")
    return sum(nn.functional.mse_loss(s, t.detach()) for s, t in zip(student, teacher, strict=True)) / len(student)
