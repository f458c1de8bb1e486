"""The guide's toolbox in pvq.training: criteria, N:M masks, distillation, lottery rewinding, LSQ options."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from pvq.formats import nm_mask
from pvq.training import (
    CRITERIA,
    DistillConfig,
    Distiller,
    FinetuneConfig,
    LotterySchedule,
    LsqWeight,
    add_lsq,
    add_masks,
    export_quantized,
    finetune,
    kd_loss,
    make_schedule,
    mask_modules,
    mse_scale,
    nm_keep_mask,
    nm_pattern_ok,
    parse_nm,
    saliency,
    score_mask,
    set_nm_masks,
    set_sparsity,
)


@pytest.fixture(autouse=True)
def _one_thread():  # tiny tensors: threads only add contention on a shared 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------- criteria vs hand-computed saliencies

W0 = np.array([[0.5, -1.0, 0.25], [-0.75, 0.3, 1.2]])  # (classes 2, inputs 3)
X0 = np.array([[1.0, 2.0, -1.0], [0.5, -1.5, 2.0], [-2.0, 0.1, 0.7]])  # (N 3, inputs 3)
Y0 = np.array([0, 1, 1])


def _tiny() -> nn.Module:
    m = nn.Sequential(nn.Linear(3, 2, bias=False)).double()
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor(W0, dtype=torch.float64))
    return m


def _hand() -> dict[str, np.ndarray]:
    """Softmax cross-entropy of z = W x by hand: per-example gradient (p − e_y) xᵀ, Hessian in z
    A = diag(p) − p pᵀ, so H·V = mean_n A_n (V x_n) x_nᵀ."""
    z = X0 @ W0.T  # (N, 2)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    e = np.eye(2)[Y0]
    per_ex = [np.outer(p[n] - e[n], X0[n]) for n in range(3)]  # (2, 3) each
    g = sum(per_ex) / 3
    hg = sum((np.diag(p[n]) - np.outer(p[n], p[n])) @ np.outer(g @ X0[n], X0[n]) for n in range(3)) / 3
    fisher = sum(q**2 for q in per_ex) / 3
    return {"magnitude": np.abs(W0), "snip": np.abs(g * W0), "grasp": W0 * hg, "fisher": 0.5 * fisher * W0**2}


@pytest.mark.parametrize("criterion", CRITERIA)
def test_criterion_matches_hand_computed_saliency(criterion: str) -> None:
    batches = [(torch.tensor(X0[:2]), torch.tensor(Y0[:2])), (torch.tensor(X0[2:]), torch.tensor(Y0[2:]))]
    got = saliency(_tiny(), criterion, batches)["0"].numpy()
    np.testing.assert_allclose(got, _hand()[criterion], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("criterion", CRITERIA)
def test_criterion_scores_the_masked_weight_and_keeps_pruned_weights_pruned(criterion: str) -> None:
    m = _tiny()
    add_masks(m)
    set_sparsity(m, 0.5)  # magnitude: 3 of 6 pruned
    pruned = m[0].weight == 0
    batches = [(torch.tensor(X0), torch.tensor(Y0))]
    sc = saliency(m, criterion, batches)
    assert set(sc) == {"0"} and sc["0"].shape == (2, 3)
    if criterion != "grasp":  # every other criterion is ∝ a power of w: zero on pruned weights
        assert bool((sc["0"][pruned] == 0).all())
    set_sparsity(m, 4 / 6, sc)
    assert bool((m[0].weight[pruned] == 0).all()) and int((m[0].weight == 0).sum()) == 4


def test_score_mask_prunes_lowest_scores_without_abs() -> None:
    s = torch.tensor([-3.0, 0.5, 2.0, -0.1, 1.0])
    assert score_mask(s, 0.4).tolist() == [0, 1, 1, 0, 1]


def test_saliency_restores_training_mode_and_rejects_unknown_criterion() -> None:
    m = _tiny().train()
    saliency(m, "snip", [(torch.tensor(X0), torch.tensor(Y0))])
    assert m.training
    with pytest.raises(ValueError, match="criterion"):
        saliency(m, "random", [])


# ---------------------------------------------------------------- N:M


def test_nm_keep_mask_matches_pvq_formats_nm_mask_on_magnitude() -> None:
    w = torch.randn(6, 16, generator=torch.Generator().manual_seed(3))
    for n, m in ((2, 4), (4, 8)):
        ours = nm_keep_mask(w.abs(), n, m)
        ref = nm_mask(w.numpy(), n, m, axis=-1)
        assert ours is not None and np.array_equal(ours.numpy(), ref)
    assert nm_keep_mask(torch.randn(4, 9), 2, 4) is None  # 9 inputs: not a multiple of 4


def test_parse_nm_rejects_bad_patterns() -> None:
    assert parse_nm("2:4") == (2, 4)
    for bad in ("4:4", "2-4", "0:4", "a:b"):
        with pytest.raises(ValueError, match="nm"):
            parse_nm(bad)


def _toy_data(n: int = 256, d: int = 16, seed: int = 0) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return torch.utils.data.TensorDataset(x, y)


def _toy_model(d: int = 16) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))


@pytest.mark.parametrize(("nm", "method", "criterion"), [("2:4", "prune", "magnitude"), ("4:8", "both", "magnitude"),
                                                         ("2:4", "prune", "snip")])
def test_nm_pattern_is_kept_through_finetuning(nm: str, method: str, criterion: str) -> None:
    n, m = parse_nm(nm)
    model = _toy_model()
    cfg = FinetuneConfig(method=method, bits=4, epochs=3, lr=0.1, batch_size=32, schedule="oneshot", nm=nm,
                         criterion=criterion, score_samples=64, bn_batches=2)
    start = {k: nm_keep_mask(mod.weight.detach().abs(), n, m) for k, mod in model.named_modules()
             if isinstance(mod, nn.Linear)}
    res = finetune(model, _toy_data(), cfg)  # fine-tunes a copy: ``model`` keeps the starting weights
    for name, mod, p in mask_modules(res.model):
        assert nm_pattern_ok(mod.weight.detach(), n, m), name
        assert int(p.mask.sum()) == p.mask.numel() * n // m
        if criterion == "magnitude":  # the pattern of the starting weights: fine-tuning never moved it
            assert torch.equal(p.mask.bool(), start[name]), name
    assert res.sparsity >= 1 - n / m - 1e-9
    assert cfg.target_sparsity == pytest.approx(1 - n / m)


def test_nm_masks_kept_by_optimizer_steps_and_dense_layers_reported() -> None:
    model = nn.Sequential(nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 2))
    add_masks(model)
    dense = set_nm_masks(model, 2, 4)
    assert dense == ["0"]  # 9 inputs per row: left dense
    before = model[2].parametrizations["weight"][0].mask.clone()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    for _ in range(3):
        loss = model(torch.randn(32, 9)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(model[2].parametrizations["weight"][0].mask, before)
    assert nm_pattern_ok(model[2].weight.detach(), 2, 4)


def test_nm_config_needs_oneshot() -> None:
    with pytest.raises(ValueError, match="nm"):
        FinetuneConfig(method="prune", nm="2:4")  # schedule gradual by default
    with pytest.raises(ValueError, match="nm"):
        FinetuneConfig(method="quant", nm="2:4", schedule="oneshot")


# ---------------------------------------------------------------- knowledge distillation


def test_kd_loss_is_zero_when_student_equals_teacher_and_positive_otherwise() -> None:
    z = torch.randn(8, 10, generator=torch.Generator().manual_seed(1))
    for t in (1.0, 4.0):
        assert float(kd_loss(z, z.clone(), t)) == pytest.approx(0.0, abs=1e-6)
    assert float(kd_loss(z + torch.randn(8, 10), z, 4.0)) > 1e-3


def test_kd_loss_times_t_squared_matches_kl_by_hand() -> None:
    zs, zt, t = torch.tensor([[1.0, 0.0, -1.0]], dtype=torch.float64), torch.tensor([[0.5, 0.5, -2.0]], dtype=torch.float64), 2.0
    ps, pt = torch.softmax(zs / t, -1), torch.softmax(zt / t, -1)
    want = float((pt * (pt.log() - ps.log())).sum()) * t * t
    assert float(kd_loss(zs, zt, t)) == pytest.approx(want, rel=1e-12)


def test_distiller_with_features_is_zero_for_an_identical_student() -> None:
    teacher = _toy_model().eval()
    student = copy.deepcopy(teacher).eval()
    d = Distiller(teacher, student, DistillConfig(alpha=1.0, temperature=3.0, feature_weight=1.0,
                                                  feature_layers=("0", "2")))
    x, y = _toy_data(16).tensors
    loss = d(student(x), x, y)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6)
    student[0].weight.data.add_(0.1)
    assert float(d(student(x), x, y).detach()) > 1e-4
    d.close()


@pytest.mark.parametrize("method", ["quant", "prune"])
def test_finetune_with_distillation_runs_for_quant_and_prune(method: str) -> None:
    cfg = FinetuneConfig(method=method, bits=4, epochs=1, lr=0.05, batch_size=64, kd_alpha=0.7, kd_temperature=2.0,
                         kd_feature_weight=0.5, kd_features=("2",), bn_batches=1)
    res = finetune(_toy_model(), _toy_data(), cfg)
    assert math.isfinite(res.history[-1]["train_loss"])
    assert FinetuneConfig(**cfg.to_json()) == cfg  # JSON round trip (kd_features list -> tuple)
    with pytest.raises(ValueError, match="loss_fn"):
        finetune(_toy_model(), _toy_data(), cfg, loss_fn=nn.functional.cross_entropy)


# ---------------------------------------------------------------- schedules and the lottery ticket


def test_lottery_schedule_prunes_equal_fractions_of_the_rest() -> None:
    s = LotterySchedule(final=0.75, rounds=3, round_steps=10, rewind_step=2)
    assert [s.sparsity_at(t) for t in (0, 9, 10, 19, 20, 35)] == pytest.approx([0, 0, 0.5, 0.5, 0.75, 0.75])
    lt = make_schedule("lottery", 0.75, total_steps=31, cycles=3, rewind_fraction=0.2)
    assert isinstance(lt, LotterySchedule) and lt.round_steps == 10 and lt.rewind_step == 2
    with pytest.raises(ValueError):
        LotterySchedule(final=0.5, rounds=1, round_steps=10)


@pytest.mark.parametrize("method", ["prune", "both"])
def test_lottery_rewind_restores_the_early_weights_on_the_kept_support(method: str) -> None:
    cfg = FinetuneConfig(method=method, bits=4, epochs=3, lr=0.1, batch_size=32, schedule="lottery", cycles=3,
                         rewind_fraction=0.25, bn_batches=0, sparsity=0.75 if method == "both" else None)
    calls: list[float] = []

    def check(model: nn.Module, early: dict[str, torch.Tensor]) -> None:
        for name, mod, p in mask_modules(model):
            orig = mod.parametrizations["weight"].original
            w0 = early[f"{name}.parametrizations.weight.original"]
            keep = p.mask.bool()
            assert torch.equal(orig[keep], w0[keep])  # exactly the early weights where kept
            assert torch.equal(orig, w0)  # (and the whole original tensor is the early one)
            assert 0 < int(keep.sum()) < keep.numel()
        bn = dict(model.named_modules())["1"]
        assert torch.equal(bn.weight.detach(), early["1.weight"])
        assert torch.equal(bn.running_mean, early["1.running_mean"])
        calls.append(sum(float((p.mask == 0).float().mean()) for _, _, p in mask_modules(model)))

    res = finetune(_toy_model(), _toy_data(), cfg, on_rewind=check)
    assert len(calls) == 2 and calls[0] < calls[1]  # two rewinds, sparsity growing
    assert res.history[-1]["target_sparsity"] == pytest.approx(0.75)


def test_lottery_early_weights_differ_from_the_pretrained_ones_when_rewinding_after_step_0() -> None:
    model = _toy_model()
    seen = []
    cfg = FinetuneConfig(method="prune", bits=8, epochs=2, lr=0.1, batch_size=32, schedule="lottery", cycles=2,
                         rewind_fraction=0.5, bn_batches=0)
    finetune(model, _toy_data(), cfg, on_rewind=lambda m, e: seen.append(e["0.parametrizations.weight.original"]))
    assert len(seen) == 1 and not torch.equal(seen[0], model[0].weight.detach())


@pytest.mark.parametrize("schedule", ["oneshot", "gradual", "iterative", "lottery"])
@pytest.mark.parametrize("criterion", ["snip", "fisher", "grasp"])
def test_every_criterion_runs_under_every_schedule(schedule: str, criterion: str) -> None:
    cfg = FinetuneConfig(method="prune", bits=4, epochs=2, lr=0.05, batch_size=64, schedule=schedule,
                         criterion=criterion, score_samples=16, bn_batches=1, mask_every=2)
    res = finetune(_toy_model(), _toy_data(), cfg)
    assert res.sparsity == pytest.approx((int(0.75 * 512) + int(0.75 * 64)) / 576)


# ---------------------------------------------------------------- QAT options


def test_per_channel_lsq_has_one_mse_scale_per_output_row() -> None:
    m = _toy_model()
    w = m[0].weight.detach().clone()
    add_lsq(m, 3, per_channel=True)
    p = m[0].parametrizations["weight"][0]
    assert isinstance(p, LsqWeight) and p.scale.shape == (32, 1)
    for r in range(32):
        assert float(p.scale[r, 0].detach()) == pytest.approx(mse_scale(w[r], 3), rel=1e-6)
    assert p.grad_scale == pytest.approx(1 / math.sqrt(16 * 3))
    ex = export_quantized(m)["0"]
    assert torch.allclose(ex["int"].float() * ex["scale"], m[0].weight.detach(), atol=1e-7)


def test_asymmetric_lsq_grid_export_and_offset_gradient() -> None:
    torch.manual_seed(0)
    w = torch.rand(8, 6) * 2 + 0.5  # all positive: an asymmetric grid is the natural fit
    q = LsqWeight(2, 0.5, w.numel(), asymmetric=True, offset=0.6)
    assert (q.qmin, q.qmax) == (0, 3)
    out = q(w)
    k = (out.detach() - 0.6) / 0.5
    assert torch.allclose(k, k.round(), atol=1e-5) and float(k.min()) >= -1e-5 and float(k.max()) <= 3 + 1e-5
    out.sum().backward()
    v = (w - 0.6) / 0.5
    clipped = int(((v < 0) | (v > 3)).sum())
    assert float(q.offset.grad) == pytest.approx(clipped * q.grad_scale, rel=1e-5)  # 1 outside, 0 inside
    m = _toy_model()
    add_lsq(m, 4, per_channel=True, asymmetric=True)
    ex = export_quantized(m)["3"]
    assert int(ex["int"].min()) >= 0 and int(ex["int"].max()) <= 15
    assert torch.allclose(ex["int"].float() * ex["scale"] + ex["offset"], m[3].weight.detach(), atol=1e-6)


def test_ends_bits_keeps_first_and_last_layer_at_8_bits_through_finetune() -> None:
    cfg = FinetuneConfig(method="quant", bits=2, epochs=1, lr=0.01, batch_size=64, ends_bits=8, per_channel=True,
                         bn_batches=0)
    res = finetune(nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)),
                   _toy_data(), cfg)
    ex = export_quantized(res.model)
    assert {k: v["bits"] for k, v in ex.items()} == {"0": 8, "2": 2, "4": 8}


def test_lottery_resumed_mid_run_matches_the_uninterrupted_run(tmp_path) -> None:  # noqa: ANN001
    cfg = FinetuneConfig(method="prune", bits=4, epochs=3, lr=0.1, batch_size=32, schedule="lottery", cycles=3,
                         rewind_fraction=0.25, bn_batches=1)
    full = finetune(_toy_model(), _toy_data(), cfg)

    def stop(row: dict) -> None:
        if row["epoch"] == 2:  # the epoch-1 checkpoint exists; the rewind to step 2 happened in epoch 1
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(_toy_model(), _toy_data(), cfg, checkpoint_dir=tmp_path, on_epoch=stop)
    assert (tmp_path / "lottery_early.pt").exists()
    rewinds: list[int] = []
    resumed = finetune(_toy_model(), _toy_data(), cfg, checkpoint_dir=tmp_path, resume=True,
                       on_rewind=lambda m, e: rewinds.append(1))
    assert len(rewinds) == 2  # both rewinds happen after the resume point (steps 8 and 16)
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
