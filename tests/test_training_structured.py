"""Structured (channel) pruning in pvq.training: ``FinetuneConfig.channel_keep`` through pvq.deploy's torch-pruning."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from pvq.training import FinetuneConfig, evaluate_accuracy, example_input, finetune, prepare_from_config

pytest.importorskip("torch_pruning")


@pytest.fixture(autouse=True)
def _one_thread():  # tiny tensors: threads only add contention on a shared 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cnn() -> nn.Module:
    """conv 1->8, BN, ReLU, conv 8->16, BN, ReLU, global pool, linear 16->10 (the classes)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    ).eval()


@torch.no_grad()
def _kill(model: nn.Module, conv: int, bn: int, nxt: int, channels: slice) -> None:
    """Make ``channels`` of layer ``conv`` dead: filter, BN scale/shift/mean zero, and the consumer's input
    slice zero too (so their magnitude importance is exactly 0 and removing them changes no output)."""
    model[conv].weight[channels] = 0
    model[bn].weight[channels] = 0
    model[bn].bias[channels] = 0
    model[bn].running_mean[channels] = 0
    model[nxt].weight[:, channels] = 0


def _weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_removing_dead_channels_shrinks_the_model_and_keeps_its_outputs():
    model = _cnn()
    with torch.no_grad():  # distinct BN statistics on the live channels
        model[1].running_var.uniform_(0.5, 2.0)
        model[4].running_var.uniform_(0.5, 2.0)
    _kill(model, 0, 1, 3, slice(0, 4))
    _kill(model, 3, 4, 8, slice(0, 8))
    x = torch.randn(5, 1, 12, 12)
    ref = model(x)
    cfg = FinetuneConfig(method="none", bits=16, channel_keep=0.5)
    small = prepare_from_config(copy.deepcopy(model), cfg, x[:1]).eval()
    assert _weights(small) <= 0.5 * _weights(model)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    assert small[0].out_channels < 8 and small[3].out_channels < 16 and small[8].out_features == 10
    torch.testing.assert_close(small(x), ref, atol=1e-6, rtol=1e-5)
    assert _weights(model) == 8 * 9 + 16 * 8 * 9 + 16 * 10  # the original is untouched


def test_pruning_live_channels_changes_outputs():  # the test above could not pass by doing nothing
    model = _cnn()
    x = torch.randn(5, 1, 12, 12)
    small = prepare_from_config(copy.deepcopy(model), FinetuneConfig(method="none", channel_keep=0.5), x[:1])
    assert not torch.allclose(small.eval()(x), model(x), atol=1e-4)


def test_finetune_with_channel_keep_trains_the_smaller_network_and_reloads():
    torch.manual_seed(1)
    x = torch.randn(64, 1, 8, 8)
    y = (x.mean((1, 2, 3)) > 0).long() * 3
    ds = TensorDataset(x, y)
    model = _cnn()
    for method in ("none", "quant"):
        cfg = FinetuneConfig(method=method, bits=8, epochs=1, lr=0.05, batch_size=32, bn_batches=1,
                             channel_keep=0.3)
        res = finetune(model, ds, cfg)
        assert _weights(res.model) <= 0.3 * _weights(model)
        # reload like test_selected: the same architecture is rebuilt from the pretrained model
        again = prepare_from_config(copy.deepcopy(model), cfg, example_input(ds))
        again.load_state_dict(res.model.state_dict())
        assert evaluate_accuracy(again, ds) == evaluate_accuracy(res.model, ds)


def test_channel_keep_is_validated():
    with pytest.raises(ValueError, match="channel_keep"):
        FinetuneConfig(channel_keep=1.0)
    with pytest.raises(ValueError, match="channel_keep"):
        FinetuneConfig(channel_keep=0.5, kd_feature_weight=1.0, kd_features=("0",))
    with pytest.raises(ValueError, match="example"):
        prepare_from_config(_cnn(), FinetuneConfig(method="none", channel_keep=0.5))


# ---------------------------------------------------------------- mixed precision from measured sensitivity


def test_sensitivity_layer_bits_fits_the_budget_and_reaches_lsq() -> None:
    from pvq.evaluate._sensitivity import Probe, measure_plan
    from pvq.recipes import Plan, parse_recipe
    from pvq.training import lsq_modules, sensitivity_layer_bits

    model = _cnn()
    with torch.no_grad():  # a last layer whose quantization hurts most: one large weight sets its grid
        model[8].weight[0, 0] = 20.0
    x = torch.randn(32, 1, 8, 8)
    shapes = {f"{i}.weight": tuple(model[i].weight.shape) for i in (0, 3, 8)}
    from pvq.evaluate._sensitivity import uniform_bits

    budget = uniform_bits("int4:tensor:rtn", shapes)
    plan = sensitivity_layer_bits(model, x, budget, choices=(2, 4, 8), name="cnn")
    widths = dict(plan.layer_bits)
    assert set(widths) == {"0", "3", "8"} and set(widths.values()) <= {2, 4, 8, 16}
    assert plan.bits <= budget + 1e-9
    with torch.no_grad():
        probe = Probe("image", "cnn", x, model(x).float(), "kl", "t", len(x))
    uniform = measure_plan(model, Plan({n: parse_recipe("int4:tensor:rtn") for n in shapes}), probe).value
    assert plan.value <= uniform + 1e-12  # measured_plan never returns worse than a uniform width that fits
    cfg = FinetuneConfig(method="quant", bits=4, layer_bits=plan.layer_bits)
    assert FinetuneConfig(**cfg.to_json()) == cfg
    lsq = prepare_from_config(copy.deepcopy(model), cfg)
    assert {n: p.bits for n, _, p in lsq_modules(lsq)} == widths


def test_layer_bits_16_leaves_the_layer_in_fp16() -> None:
    from pvq.training import lsq_modules

    cfg = FinetuneConfig(method="quant", bits=4, layer_bits=(("0", 16), ("8", 8)))
    lsq = prepare_from_config(_cnn(), cfg)
    assert {n: p.bits for n, _, p in lsq_modules(lsq)} == {"3": 4, "8": 8}


def test_layer_bits_are_validated() -> None:
    with pytest.raises(ValueError, match="layer_bits"):
        FinetuneConfig(layer_bits=(("0", 0),))
    with pytest.raises(ValueError, match="no compressible layer nope"):
        prepare_from_config(_cnn(), FinetuneConfig(method="quant", layer_bits=(("nope", 4),)))
