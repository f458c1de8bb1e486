"""The batched depthwise path (pvq.apply._depthwise) gives exactly what compress_matrix gives each channel alone."""

from __future__ import annotations

import pytest
import torch

from pvq.apply._algorithms import compress_matrix
from pvq.apply._apply import _merge
from pvq.apply._depthwise import compress_depthwise, depthwise_applies
from pvq.errors import PvqInputError
from pvq.recipes import parse_recipe

RECIPES = [
    "int4:g128:gptq",
    "int3:channel:gptq",
    "uint4:channel:gptq",
    "nf4:g128:gptq",
    "int4:channel:gptq:order=natural",
    "prune50:sparsegpt",
    "2:4:sparsegpt",
    "prune50:sparsegpt+int4:g128:gptq",
    "2:4:sparsegpt+int5:g128:gptq",
    "prune50:wanda+int4:channel:rtn",
    "prune30:magnitude+int3:g128:gptq",
    "int4:channel:rtn",
    "none",
]


def _problem(G: int = 24, c: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    W = torch.randn(G, c, generator=g)
    X = torch.randn(G, 64, c, generator=g) * torch.rand(G, 1, c, generator=g)
    X[3, :, 2] = 0.0  # an input never active in calibration
    return W, (X.transpose(1, 2) @ X).double()


@pytest.mark.parametrize("recipe", RECIPES)
def test_batched_depthwise_equals_one_channel_at_a_time(recipe: str) -> None:
    W, H = _problem()
    G, c = W.shape
    shape = (G, 1, 3, 3)
    r = parse_recipe(recipe)
    ref = _merge([compress_matrix("dw", W[i : i + 1], r, H[i], shape=(1, c)) for i in range(G)], "dw", shape, r)
    new = compress_depthwise("dw", W, r, H, shape)
    assert new is not None
    assert torch.equal(ref.dequantize(), new.dequantize())
    for field in ("codes", "scale", "zero_point", "mask"):
        a, b = getattr(ref, field), getattr(new, field)
        assert (a is None) == (b is None), field
        if a is not None:
            assert torch.equal(a, b), field


def test_where_the_batched_path_does_not_apply() -> None:
    assert depthwise_applies(parse_recipe("int4:g128:gptq"), 1, 9)
    assert not depthwise_applies(parse_recipe("int4:g128:gptq"), 2, 9)  # two channels per group share an H
    assert not depthwise_applies(parse_recipe("int4:g4:gptq"), 1, 9)  # several groups per channel
    assert not depthwise_applies(parse_recipe("int4:channel:gptq"), 1, 200)  # more than one sweep block
    W, H = _problem()
    assert compress_depthwise("dw", W[:, :4].repeat(1, 50), parse_recipe("int4:g128:gptq"), H, (24, 1, 200)) is None


def test_bad_hessians_are_one_line_errors() -> None:
    W, H = _problem()
    with pytest.raises(PvqInputError, match="must be"):
        compress_depthwise("dw", W, parse_recipe("int4:g128:gptq"), H[:, :4, :4], (24, 1, 3, 3))
    H[0, 0, 0] = float("nan")
    with pytest.raises(PvqInputError, match="NaN"):
        compress_depthwise("dw", W, parse_recipe("int4:g128:gptq"), H, (24, 1, 3, 3))
