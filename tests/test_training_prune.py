"""Masks, magnitude pruning, sparsity schedules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pvq.training import (
    FinetuneConfig,
    GradualSchedule,
    IterativeSchedule,
    OneShotSchedule,
    add_masks,
    finetune,
    magnitude_mask,
    make_schedule,
    model_sparsity,
    set_sparsity,
)


@pytest.fixture(autouse=True)
def _one_thread():  # tiny tensors: threads only add contention on a shared 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_magnitude_mask_zeroes_floor_s_n_smallest() -> None:
    w = torch.tensor([0.5, -0.1, 3.0, 0.2, -2.0, 0.05, 1.0])
    m = magnitude_mask(w, 0.5)  # floor(3.5) = 3 smallest: 0.05, -0.1, 0.2
    assert m.tolist() == [1, 0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("every", [1, 3])
def test_gradual_schedule_hits_final_exactly_at_ramp_end_and_keeps_it(every: int) -> None:
    sched = GradualSchedule(final=0.875, ramp_steps=15 * 10, every=every)  # 15 epochs of 10 steps
    values = [sched.sparsity_at(t) for t in range(20 * 10 + 1)]
    assert values[0] == 0.0
    assert all(a <= b for a, b in zip(values, values[1:], strict=False))  # monotone
    assert values[149] < 0.875
    assert all(v == 0.875 for v in values[150:])
    # the cubic: half-way, s = s_f (1 - 0.5^3)
    if every == 1:
        assert values[75] == pytest.approx(0.875 * (1 - 0.5**3))


def test_make_schedule_uses_75_percent_ramp() -> None:
    s = make_schedule("gradual", 0.5, total_steps=200)
    assert isinstance(s, GradualSchedule) and s.ramp_steps == 150
    assert isinstance(make_schedule("oneshot", 0.5, 200), OneShotSchedule)
    it = make_schedule("iterative", 0.6, 200, cycles=3)
    assert isinstance(it, IterativeSchedule)
    assert [it.sparsity_at(t) for t in (0, 49, 50, 100, 199)] == pytest.approx([0.2, 0.2, 0.4, 0.6, 0.6])


def _toy_data(n: int = 256, seed: int = 0) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return torch.utils.data.TensorDataset(x, y)


def _toy_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))


def test_masks_stay_applied_after_optimizer_steps() -> None:
    m = _toy_model()
    add_masks(m)
    set_sparsity(m, 0.6)
    zero_before = (m[0].weight == 0).clone()
    opt = torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9, weight_decay=1e-3)
    ds = _toy_data()
    for _ in range(5):
        loss = nn.functional.cross_entropy(m(ds.tensors[0]), ds.tensors[1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(m[0].weight == 0, zero_before)  # same zeros in the effective weight
    assert model_sparsity(m) == pytest.approx((int(0.6 * 12 * 32) + int(0.6 * 64)) / (12 * 32 + 64))
    # pruned weights stay pruned when sparsity grows (masks recomputed on the effective weight)
    set_sparsity(m, 0.8)
    assert bool(((m[0].weight == 0) | ~zero_before).all())


def test_finetune_reaches_final_sparsity_at_scheduled_epoch_and_keeps_it() -> None:
    ds = _toy_data()
    cfg = FinetuneConfig(method="prune", bits=4, epochs=4, lr=0.05, batch_size=32, bn_batches=2)
    res = finetune(_toy_model(), ds, cfg)
    hist = {r["epoch"]: r for r in res.history}
    assert hist[2]["target_sparsity"] < 0.75
    assert hist[3]["target_sparsity"] == 0.75 and hist[4]["target_sparsity"] == 0.75  # 75 % of 4 epochs = 3
    assert res.sparsity == pytest.approx((int(0.75 * 384) + int(0.75 * 64)) / 448)


def test_oneshot_and_iterative_schedules_in_the_loop() -> None:
    ds = _toy_data()
    one = finetune(
        _toy_model(),
        ds,
        FinetuneConfig(
            method="prune", bits=8, epochs=2, lr=0.05, batch_size=64, schedule="oneshot", bn_batches=0
        ),
    )
    assert [r["target_sparsity"] for r in one.history] == [0.5, 0.5]
    it = finetune(
        _toy_model(),
        ds,
        FinetuneConfig(
            method="prune", bits=4, epochs=4, lr=0.05, batch_size=64, schedule="iterative", bn_batches=0
        ),
    )
    # 3 cycles of 4 steps over the first 75 % of 16 steps: 0.25 (epoch 1), 0.5 (epoch 2), 0.75 (3, 4);
    # history rows report the masks at the end of each epoch, i.e. after the next cycle's pruning step
    assert [r["target_sparsity"] for r in it.history] == pytest.approx([0.5, 0.75, 0.75, 0.75])
    assert it.sparsity == pytest.approx((int(0.75 * 384) + int(0.75 * 64)) / 448)
