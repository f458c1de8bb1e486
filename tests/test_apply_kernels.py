"""The compiled paths of ``pvq apply`` against their torch references: the GPTQ/SparseGPT column loop, the MSE
scale grid search, and stacked solves of weights sharing one input Hessian."""

from __future__ import annotations

import pytest
import torch

from pvq.apply._algorithms import compress_matrix, compress_stack, row_separable
from pvq.apply._obs import obs_sweep
from pvq.apply._scales import (
    Grid,
    _group_stats,
    _params_at_ratio,
    _search_ratios,
    _search_ratios_torch,
    _sq_error,
)
from pvq.apply._sweep_kernels import _rint
from pvq.recipes import parse_recipe


def _problem(rows: int, cols: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(cols) + 0.6 * torch.randn(cols, cols, generator=g) / cols**0.5
    X = torch.randn(800, cols, generator=g) @ mix * torch.rand(cols, generator=g).add(0.2)
    X[:, 3] = 0.0  # a dead input
    return torch.randn(rows, cols, generator=g) * 0.05, (X.T @ X).double()


def _err(W: torch.Tensor, Q: torch.Tensor, H: torch.Tensor) -> float:
    D = (W - Q).double()
    return float(torch.einsum("ij,jk,ik->", D, H, D))


def test_rint_rounds_half_to_even_like_torch() -> None:
    t = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.49, -7.51, 1270.5, 0.0], dtype=torch.float32)
    got = torch.tensor([float(_rint(v)) for v in t.numpy()])
    torch.testing.assert_close(got, torch.round(t), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("recipe", "order"),
    [
        ("int4:g32:gptq", "act"),
        ("int3:g32:gptq", "natural"),  # groups chosen during the sweep
        ("uint4:channel:gptq", "act"),
        ("nf4:g32:gptq", "act"),
        ("fp8:channel:gptq", "natural"),
        ("int4:tensor:gptq", "act"),
    ],
)
def test_compiled_gptq_sweep_matches_the_torch_loop(recipe: str, order: str) -> None:
    W, H = _problem(48, 96, 1)
    q = parse_recipe(recipe).quant
    fast = obs_sweep(W, H, damp=0.01, order=order, quant=q)
    ref = obs_sweep(W, H, damp=0.01, order=order, quant=q, compiled=False)
    assert fast.codes is not None and ref.codes is not None
    # the same arithmetic; only the rank-1 update may round differently (a code within an ulp of a boundary)
    assert float((fast.codes == ref.codes).float().mean()) >= 0.999
    torch.testing.assert_close(fast.scale, ref.scale, rtol=0, atol=0)
    assert _err(W, fast.weight, H) == pytest.approx(_err(W, ref.weight, H), rel=1e-3)


@pytest.mark.parametrize("pattern", ["prune50", "2:4"])
def test_compiled_sparsegpt_sweep_matches_the_torch_loop(pattern: str) -> None:
    W, H = _problem(40, 64, 2)
    sel = parse_recipe(f"{pattern}:sparsegpt").prune
    fast = obs_sweep(W, H, damp=0.01, select=sel)
    ref = obs_sweep(W, H, damp=0.01, select=sel, compiled=False)
    assert fast.mask is not None and ref.mask is not None
    assert float((fast.mask == ref.mask).float().mean()) >= 0.999
    torch.testing.assert_close(fast.weight, ref.weight, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fmt", ["int4", "int8", "int2", "uint4", "uint3", "nf4"])
def test_compiled_scale_search_picks_the_reference_ratios(fmt: str) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(512, 64, generator=g) * torch.rand(512, 1, generator=g)
    x[::5] = torch.randn(103, 64, generator=g) ** 3  # heavy tails: clipping pays
    x[7] = 0.0  # an all-zero group
    grid = Grid.of(parse_recipe(f"{fmt}:g64:rtn").quant)
    amax, xmin, xmax = _group_stats(x, grid)
    fast = _search_ratios(x, grid, amax, xmin, xmax)
    ref = _search_ratios_torch(x, grid, amax, xmin, xmax)
    # float64 vs float32 sums of squares can only flip a near-tie
    assert float((fast == ref).float().mean()) >= 0.99

    def err(p: torch.Tensor) -> torch.Tensor:
        return _sq_error(
            x.double(), _params_at_ratio(grid, amax.double(), xmin.double(), xmax.double(), p.double()), grid
        )

    assert float(err(fast).sum()) <= float(err(ref).sum()) * (1 + 1e-6)
    assert bool((fast < 1).any())  # the search does clip somewhere on heavy tails


@pytest.mark.parametrize(
    "recipe",
    [
        "int4:g32:gptq",
        "uint4:channel:gptq",
        "prune50:sparsegpt",
        "2:4:wanda+int8:channel:gptq",
        "int4:g32:rtn",
    ],
)
def test_stacked_solve_equals_one_solve_per_weight(recipe: str) -> None:
    W, H = _problem(60, 64, 4)
    parts = [("a", W[:24], (24, 64)), ("b", W[24:40], (16, 4, 4, 4)), ("c", W[40:], (20, 64))]
    assert row_separable(recipe)
    stacked = compress_stack(parts, recipe, H)
    for (name, w, shape), cw in zip(parts, stacked, strict=True):
        one = compress_matrix(name, w, recipe, H, shape=shape)
        assert cw.name == name and cw.shape == shape
        assert float((cw.dequantize() == one.dequantize()).float().mean()) >= 0.999
        if one.scale is not None:
            torch.testing.assert_close(cw.scale, one.scale)


def test_per_tensor_scale_is_not_stacked() -> None:
    W, H = _problem(30, 64, 5)
    recipe = "int4:tensor:gptq"
    assert not row_separable(recipe)
    out = compress_stack([("a", W[:10], (10, 64)), ("b", W[10:], (20, 64))], recipe, H)
    for cw, w in zip(out, (W[:10], W[10:]), strict=True):  # each weight its own tensor scale
        torch.testing.assert_close(cw.dequantize(), compress_matrix(cw.name, w, recipe, H).dequantize())
