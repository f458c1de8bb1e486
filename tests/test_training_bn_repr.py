"""BN re-estimation and representation metrics (CKA, SNR)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pvq.training import activation_snr_db, capture_activations, linear_cka, reestimate_bn


@pytest.fixture(autouse=True)
def _one_thread():  # tiny tensors: threads only add contention on a shared 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_bn_reestimation_changes_running_stats_not_weights() -> None:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    m.eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    batches = [torch.randn(32, 6) * 3 + 1 for _ in range(4)]
    assert reestimate_bn(m, batches) == 4
    after = m.state_dict()
    assert not torch.allclose(after["1.running_mean"], before["1.running_mean"])
    assert not torch.allclose(after["1.running_var"], before["1.running_var"])
    for k in ("0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"):
        assert torch.equal(after[k], before[k])
    assert not m.training and m[1].momentum == 0.1  # mode and momentum restored
    # the estimate is the exact average over the batches of the per-batch means
    h = torch.cat([m[0](b) for b in batches]).detach()
    assert torch.allclose(after["1.running_mean"], h.mean(0), atol=1e-5)


def test_cka_of_itself_is_one_and_invariant_to_orthogonal_transforms() -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 20, generator=g, dtype=torch.float64)
    assert linear_cka(X, X) == pytest.approx(1.0, abs=1e-12)
    Q, _ = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))
    Y = torch.randn(50, 7, generator=g, dtype=torch.float64)
    assert linear_cka(X @ Q, Y) == pytest.approx(linear_cka(X, Y), abs=1e-12)
    assert linear_cka(X @ Q * 3.0, X) == pytest.approx(1.0, abs=1e-12)  # isotropic scaling too
    # Gram-matrix path (features > examples) agrees with the feature-space path
    Z = torch.randn(10, 40, generator=g, dtype=torch.float64)
    W = torch.randn(10, 30, generator=g, dtype=torch.float64)
    Zc, Wc = Z - Z.mean(0), W - W.mean(0)
    direct = float(
        torch.linalg.norm(Wc.T @ Zc) ** 2 / (torch.linalg.norm(Zc.T @ Zc) * torch.linalg.norm(Wc.T @ Wc))
    )
    assert linear_cka(Z, W) == pytest.approx(direct, rel=1e-10)
    assert 0.0 <= linear_cka(X, Y) < 1.0


def test_cka_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError):
        linear_cka(torch.zeros(4, 3), torch.zeros(5, 3))


def test_activation_snr() -> None:
    ref = torch.ones(10, 4)
    assert math.isinf(activation_snr_db(ref, ref))
    assert activation_snr_db(ref, ref * 1.1) == pytest.approx(20.0)  # noise power 0.01


def test_capture_activations_flattens_per_example() -> None:
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    acts = capture_activations(m, ["0"], torch.randn(5, 1, 6, 6))
    assert acts["0"].shape == (5, 2 * 4 * 4)
    with pytest.raises(ValueError):
        capture_activations(m, ["nope"], torch.randn(1, 1, 6, 6))
