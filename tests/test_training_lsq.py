"""LSQ fake quantization: values, the LSQ paper's gradients, scale init, export."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pvq.training import LsqWeight, add_lsq, export_quantized, lsq_fake_quant, lsq_scale_parameters, mse_scale


@pytest.fixture(autouse=True)
def _one_thread():  # tiny tensors: threads only add contention on a shared 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_lsq_gradients_match_the_lsq_paper_formula_by_hand() -> None:
    # 3-bit grid: Q_N = -4, Q_P = 3; s = 0.5; v = w/s = [0.6, -3.4, 10, -10, 1.5]
    w = torch.tensor([0.3, -1.7, 5.0, -5.0, 0.75], requires_grad=True)
    s = torch.tensor(0.5, requires_grad=True)
    g = 1.0 / math.sqrt(w.numel() * 3)  # LSQ: g = 1/sqrt(N Q_P)
    y = lsq_fake_quant(w, s, -4, 3, g)
    # forward: s * round(clip(v)) = 0.5 * [1, -3, 3, -4, 2]  (1.5 rounds half to even -> 2)
    assert torch.allclose(y, torch.tensor([0.5, -1.5, 1.5, -2.0, 1.0]))
    upstream = torch.tensor([1.0, 2.0, -1.0, 0.5, 3.0])
    y.backward(upstream)
    # LSQ eq. 3: dŷ/ds = round(v) - v inside, Q_N below, Q_P above (then times g)
    per_elem = torch.tensor([1 - 0.6, -3 - (-3.4), 3.0, -4.0, 2 - 1.5])
    assert s.grad is not None and w.grad is not None
    assert math.isclose(float(s.grad), g * float((upstream * per_elem).sum()), rel_tol=1e-6)
    # straight-through estimator: 1 inside the clipping range, 0 outside
    assert torch.allclose(w.grad, upstream * torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0]))


def test_parametrized_layer_has_grid_values_and_exports_integers() -> None:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    names = add_lsq(m, bits=4)
    assert names == ["0", "3"]
    assert len(lsq_scale_parameters(m)) == 2
    ex = export_quantized(m)
    for name, layer in (("0", m[0]), ("3", m[3])):
        q = ex[name]["int"]
        assert q.dtype == torch.int32 and int(q.min()) >= -8 and int(q.max()) <= 7
        assert torch.allclose(q.float() * ex[name]["scale"], layer.weight.detach(), atol=1e-7)
    p = m[0].parametrizations["weight"][0]
    assert isinstance(p, LsqWeight) and p.grad_scale == pytest.approx(1 / math.sqrt(m[0].weight.numel() * 7))


def test_mse_scale_is_no_worse_than_a_coarse_grid() -> None:
    torch.manual_seed(1)
    w = torch.randn(4000)
    for bits in (2, 4, 8):
        s = mse_scale(w, bits)
        qmax = 2 ** (bits - 1) - 1

        def err(scale: float, qmax: int = qmax) -> float:
            return float(((w - torch.clamp(torch.round(w / scale), -qmax - 1, qmax) * scale) ** 2).sum())

        coarse = min(err(float(w.abs().max()) * i / 100 / qmax) for i in range(1, 101))
        assert err(s) <= coarse * (1 + 1e-6)


def test_mse_scale_rejects_non_finite() -> None:
    with pytest.raises(ValueError):
        mse_scale(torch.tensor([1.0, float("nan")]), 4)
