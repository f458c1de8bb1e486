"""Sparsity schedules over optimizer steps: gradual (Zhu & Gupta 2017, cubic), one-shot, iterative.

Each schedule maps a step index ``t`` (0-based, counted in optimizer steps) to the target sparsity
that the masks should have *before* step ``t``. The fine-tune loop calls ``set_sparsity`` whenever
that target changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["GradualSchedule", "OneShotSchedule", "IterativeSchedule", "LotterySchedule", "SparsitySchedule",
           "make_schedule"]


@dataclass(frozen=True)
class GradualSchedule:
    """Zhu & Gupta: ``s_t = s_f + (s_i − s_f)(1 − (t − t0)/(n Δt))³`` for ``t0 ≤ t ≤ t0 + nΔt``, held at s_f after.

    ``ramp_steps`` = nΔt (the paper: 75 % of the fine-tuning, 15 of 20 epochs), ``every`` = Δt (masks
    are updated every Δt steps; the last update lands exactly on ``t0 + ramp_steps``).
    """

    final: float
    ramp_steps: int
    initial: float = 0.0
    start: int = 0
    every: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.initial <= self.final < 1.0:
            raise ValueError(f"need 0 <= initial <= final < 1, got {self.initial}, {self.final}")
        if self.ramp_steps < 0 or self.start < 0 or self.every < 1:
            raise ValueError("ramp_steps and start must be >= 0 and every >= 1")

    def sparsity_at(self, step: int) -> float:
        t = step - self.start
        if t < 0:
            return 0.0
        if self.ramp_steps == 0 or t >= self.ramp_steps:
            return self.final
        t = (t // self.every) * self.every  # masks change only every Δt steps
        return cubic_sparsity(t / self.ramp_steps, self.initial, self.final)


@dataclass(frozen=True)
class OneShotSchedule:
    """Prune to ``final`` before the first step, then fine-tune at fixed sparsity."""

    final: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.final < 1.0:
            raise ValueError(f"final sparsity must be in [0, 1), got {self.final}")

    def sparsity_at(self, step: int) -> float:
        return self.final


@dataclass(frozen=True)
class IterativeSchedule:
    """Prune-retrain cycles: ``cycles`` equal steps of sparsity, one at the start of each cycle of
    ``cycle_steps`` optimizer steps (cycle k of 1..cycles has sparsity ``final · k / cycles``)."""

    final: float
    cycles: int
    cycle_steps: int

    def __post_init__(self) -> None:
        if not 0.0 <= self.final < 1.0 or self.cycles < 1 or self.cycle_steps < 1:
            raise ValueError("need final in [0, 1), cycles >= 1, cycle_steps >= 1")

    def sparsity_at(self, step: int) -> float:
        k = min(step // self.cycle_steps + 1, self.cycles)
        return self.final * k / self.cycles


@dataclass(frozen=True)
class LotterySchedule:
    """Iterative magnitude pruning with rewinding (Frankle & Carbin 2019; Frankle et al. 2020): ``rounds``
    training rounds of ``round_steps`` steps (the last one also takes the remainder); round 0 is dense,
    round r ≥ 1 starts pruned to ``1 − (1 − final)^(r / (rounds − 1))`` (the same fraction of the
    remaining weights each time) with the weights *rewound* to the early checkpoint taken after
    ``rewind_step`` steps of round 0. The fine-tune loop does the rewinding; this only gives the targets.
    """

    final: float
    rounds: int
    round_steps: int
    rewind_step: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.final < 1.0 or self.rounds < 2 or self.round_steps < 1:
            raise ValueError("lottery: need final in [0, 1), rounds >= 2, round_steps >= 1")
        if not 0 <= self.rewind_step < self.round_steps:
            raise ValueError(f"lottery: rewind_step must be in 0..{self.round_steps - 1}, got {self.rewind_step}")

    def round_of(self, step: int) -> int:
        return min(step // self.round_steps, self.rounds - 1)

    def sparsity_at(self, step: int) -> float:
        r = self.round_of(step)
        return 1.0 - (1.0 - self.final) ** (r / (self.rounds - 1))


SparsitySchedule = GradualSchedule | OneShotSchedule | IterativeSchedule | LotterySchedule


def make_schedule(kind: str, final: float, total_steps: int, ramp_fraction: float = 0.75, every: int = 1,
                  cycles: int = 3, rewind_fraction: float = 0.1) -> SparsitySchedule:
    """``kind`` = gradual | oneshot | iterative | lottery over ``total_steps`` optimizer steps.

    lottery: ``cycles`` rounds of ``total_steps // cycles`` steps, rewinding to step
    ``floor(rewind_fraction · round steps)`` of round 0."""
    if kind == "gradual":
        return GradualSchedule(final=final, ramp_steps=int(math.floor(ramp_fraction * total_steps)), every=every)
    if kind == "oneshot":
        return OneShotSchedule(final=final)
    if kind == "iterative":
        ramp = max(1, int(math.floor(ramp_fraction * total_steps)))
        return IterativeSchedule(final=final, cycles=cycles, cycle_steps=max(1, ramp // cycles))
    if kind == "lottery":
        steps = max(1, total_steps // cycles)
        return LotterySchedule(final=final, rounds=cycles, round_steps=steps,
                               rewind_step=min(int(rewind_fraction * steps), steps - 1))
    raise ValueError(f"schedule must be gradual|oneshot|iterative|lottery, got {kind!r}")


# ---------------------------------------------------------------- pure numeric functions


def cubic_sparsity(progress: float, initial: float, final: float) -> float:
    """Zhu & Gupta's cubic ramp at ``progress`` ∈ [0, 1]: ``final + (initial − final)(1 − progress)³``."""
    p = min(max(progress, 0.0), 1.0)
    return final + (initial - final) * (1.0 - p) ** 3
