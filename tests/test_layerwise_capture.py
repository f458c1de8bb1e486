"""Activation capture: unfolded inputs reproduce the convolution exactly (padding, stride, dilation,
groups, padding modes), G accumulates X^T X, chunks and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pvq.errors import PvqInputError
from pvq.layerwise import capture_grams, capture_layer_problems, chunk_ranges, unfold_conv_input


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3, padding=1, stride=2, dilation=1, groups=1),
        dict(kernel_size=3, padding=2, stride=1, dilation=2, groups=2),
        dict(kernel_size=3, padding=1, stride=1, groups=4, padding_mode="reflect"),
        dict(kernel_size=(3, 1), padding="same", groups=1, padding_mode="circular"),
        dict(kernel_size=1, padding=0, stride=1, groups=1),
    ],
)
def test_unfold_reproduces_conv(kw):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 8, bias=False, **kw).double()
    x = torch.randn(2, 4, 9, 7, dtype=torch.float64)
    y = conv(x)  # (B, O, H', W')
    X = unfold_conv_input(conv, x)  # (groups, samples, n)
    g = conv.groups
    Wg = conv.weight.reshape(g, 8 // g, -1)
    yhat = torch.einsum("gsn,gon->sgo", X, Wg).reshape(-1, 8)  # (samples, O) in (b, h, w) order
    yref = y.permute(0, 2, 3, 1).reshape(-1, 8)
    assert torch.allclose(yhat, yref, atol=1e-10)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 6, 3, padding=1, stride=2, groups=2, bias=False)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        return self.fc(self.b(torch.relu(self.a(x))).mean((2, 3)))


def test_gram_matches_direct_sum():
    torch.manual_seed(1)
    net = _Net().eval()
    batches = [torch.randn(2, 3, 8, 8) for _ in range(3)]
    _, mod, acc = capture_grams(net, "b", batches)
    assert acc.G.shape == (2, 36, 36)
    ref = np.zeros((2, 36, 36))
    for x in batches:
        with torch.no_grad():
            X = unfold_conv_input(mod, torch.relu(net.a(x))).double().numpy()
        ref += np.einsum("gsi,gsj->gij", X, X)
    assert np.allclose(acc.G, ref, rtol=1e-9, atol=1e-9)
    assert acc.samples == 3 * 2 * 16


def test_capture_problems_chunks_and_scales():
    torch.manual_seed(2)
    net = _Net().eval()
    batches = [torch.randn(4, 3, 8, 8) for _ in range(2)]
    probs = capture_layer_problems(net, "b", batches, opt_dim=18, bits=(2, 4))
    # 2 groups x (4 channels x 9 = 36 inputs in chunks of 2 channels) = 4 chunks of n = 18, 3 rows each
    assert len(probs) == 4 and all(p.n == 18 and p.W.shape == (3, 18) for p in probs)
    assert set(probs[0].scales) == {2, 4} and probs[0].scales[2] > probs[0].scales[4] > 0
    whole = capture_layer_problems(net, "fc", batches, opt_dim=None, bits=(4,), max_rows=2)
    assert len(whole) == 1 and whole[0].G.shape == (6, 6) and whole[0].W.shape == (2, 6)


def test_chunk_ranges():
    assert chunk_ranges(64, 32) == [(0, 32), (32, 64)]
    assert chunk_ranges(72, 32, kernel_area=9) == [(0, 36), (36, 72)]  # 4 channels x 3x3, as the paper
    assert chunk_ranges(10, None) == [(0, 10)]
    with pytest.raises(PvqInputError):
        chunk_ranges(10, -1)


def test_bad_layer_names():
    net = _Net()
    with pytest.raises(PvqInputError, match="no module named"):
        capture_grams(net, "nope", [torch.randn(1, 3, 8, 8)])
    with pytest.raises(PvqInputError, match="not a conv or linear"):
        capture_grams(nn.Sequential(nn.ReLU()), "0", [torch.randn(1, 3, 8, 8)])
