"""Per-matrix compression algorithms of ``pvq apply``: grids, RTN/absmax/GPTQ, magnitude/Wanda/SparseGPT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pvq.apply._algorithms import compress_matrix, needs_calibration, quantize_rtn
from pvq.apply._obs import obs_sweep
from pvq.apply._scales import Grid, round_minifloat
from pvq.errors import PvqInputError
from pvq.layerwise._quant_heuristics import gptq_round
from pvq.recipes import QUANT_FORMATS, Quant, parse_recipe


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _correlated(rows: int, cols: int, seed: int, samples: int = 600) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian weights (rows, cols) and H = X^T X of correlated inputs with unequal scales."""
    g = _gen(seed)
    W = torch.randn(rows, cols, generator=g)
    mix = torch.eye(cols) + 0.6 * torch.randn(cols, cols, generator=g) / cols**0.5
    X = torch.randn(samples, cols, generator=g) @ mix * torch.rand(cols, generator=g).add(0.2)
    return W, (X.T @ X).double()


def _err(W: torch.Tensor, Q: torch.Tensor, H: torch.Tensor) -> float:
    """Layer output error tr((W - Q) H (W - Q)^T)."""
    D = (W - Q).double()
    return float(torch.einsum("ij,jk,ik->", D, H.double(), D))


@pytest.mark.parametrize("fmt", QUANT_FORMATS)
@pytest.mark.parametrize("algo", ["rtn", "absmax"])
def test_codes_are_nearest_grid_points(fmt: str, algo: str) -> None:
    W = torch.randn(12, 80, generator=_gen(1))
    cw = compress_matrix("w", W, parse_recipe(f"{fmt}:g16:{algo}"))
    assert cw.codes is not None and cw.scale is not None
    grid = Grid.of(cw.recipe.quant)  # type: ignore[arg-type]
    s = cw.scale.repeat_interleave(16, dim=1)
    zp = 0.0 if cw.zero_point is None else cw.zero_point.float().repeat_interleave(16, dim=1)
    if grid.levels is not None:
        cand = grid.levels[None, None, :]
    else:
        cand = torch.arange(grid.qmin, grid.qmax + 1).float()[None, None, :] - (
            zp[..., None] if cw.zero_point is not None else 0.0
        )
    values = cand * s[..., None]  # (rows, cols, levels) every grid point of each weight's group
    best = (values - W[..., None]).abs().min(dim=-1).values
    got = (cw.dequantize() - W).abs()
    assert torch.all(got <= best + 1e-6 * s)
    if grid.levels is None:  # inside the grid's range, error at most half a step
        lo = values.min(dim=-1).values
        hi = values.max(dim=-1).values
        inside = (W >= lo) & (W <= hi)
        assert torch.all(got[inside] <= 0.5 * s[inside] * (1 + 1e-5))
    if cw.zero_point is not None:
        assert int(cw.zero_point.min()) >= grid.qmin and int(cw.zero_point.max()) <= grid.qmax


def test_absmax_keeps_every_weight_in_range() -> None:
    W = torch.randn(10, 64, generator=_gen(2))
    cw = compress_matrix("w", W, parse_recipe("int4:channel:absmax"))
    assert cw.scale is not None
    assert torch.all((cw.dequantize() - W).abs() <= 0.5 * cw.scale * (1 + 1e-3))


@pytest.mark.parametrize("fmt", ["int3", "int4", "uint4", "fp4", "nf4"])
def test_mse_scale_beats_absmax_on_gaussian_rows(fmt: str) -> None:
    W = torch.randn(64, 512, generator=_gen(3))
    e = {}
    for algo in ("rtn", "absmax"):
        e[algo] = (
            (compress_matrix("w", W, parse_recipe(f"{fmt}:channel:{algo}")).dequantize() - W).pow(2).sum(1)
        )
    assert float(e["rtn"].sum()) < 0.97 * float(e["absmax"].sum())
    assert torch.all(e["rtn"] <= e["absmax"] * 1.01)  # the search includes ratio 1; scales rounded to FP16


@pytest.mark.parametrize("fmt", ["fp8", "fp4"])
def test_minifloat_rounding_matches_the_level_table(fmt: str) -> None:
    grid = Grid.of(Quant(fmt, -1, "rtn"))
    assert grid.levels is not None
    x = torch.randn(20000, generator=_gen(4)) * grid.max_level / 2
    nearest = grid.levels[(grid.levels[None, :] - x[:, None]).abs().argmin(dim=1)]
    assert torch.equal(round_minifloat(x.clone(), fmt, grid.max_level), nearest)


@pytest.mark.parametrize(
    ("recipe", "groups"),
    [("int4:tensor:rtn", (1, 1)), ("int4:channel:rtn", (6, 1)), ("uint4:g32:gptq", (6, 3))],
)
def test_scale_shapes(recipe: str, groups: tuple[int, int]) -> None:
    W, H = _correlated(6, 70, 5)
    cw = compress_matrix("w", W, parse_recipe(recipe), H)
    assert cw.scale is not None and tuple(cw.scale.shape) == groups
    assert cw.codes is not None and cw.codes.dtype == torch.int16 and tuple(cw.codes.shape) == (6, 70)
    assert (cw.zero_point is not None) == recipe.startswith("u")
    assert torch.equal(cw.scale.half().float(), cw.scale)  # what a checkpoint stores (FP16) loses nothing


@pytest.mark.parametrize(
    "recipe",
    [
        "int4:g32:gptq",
        "int4:g32:gptq:order=natural",
        "int3:channel:gptq",
        "uint4:g32:gptq",
        "fp4:g32:gptq",
        "nf4:channel:gptq",
        "int4:tensor:gptq",
    ],
)
def test_gptq_beats_rtn_on_correlated_inputs(recipe: str) -> None:
    W, H = _correlated(32, 96, 6)
    rtn = recipe.split(":gptq")[0] + ":rtn"
    e_gptq = _err(W, compress_matrix("w", W, parse_recipe(recipe), H).dequantize(), H)
    e_rtn = _err(W, compress_matrix("w", W, parse_recipe(rtn), H).dequantize(), H)
    assert e_gptq < 0.9 * e_rtn


@pytest.mark.parametrize("order", ["act", "natural"])
def test_gptq_dequantize_reproduces_the_sweep(order: str) -> None:
    W, H = _correlated(16, 100, 7)
    q = Quant("uint4", 32, "gptq")
    res = obs_sweep(W, H, damp=0.01, order=order, quant=q)
    cw = compress_matrix("w", W, parse_recipe(f"uint4:g32:gptq:order={order}"), H)
    assert torch.equal(cw.dequantize(), res.weight)


@pytest.mark.parametrize("order", ["act", "natural"])
def test_gptq_equals_pvq_gptq_round_without_damping(order: str) -> None:
    W, H = _correlated(12, 40, 8)
    q = Quant("int4", -1, "gptq")
    res = obs_sweep(W, H, damp=0.0, order=order, quant=q, dtype=torch.float64)
    assert res.codes is not None and res.scale is not None
    Hn = H.numpy()
    perm = np.argsort(-np.diag(Hn), kind="stable") if order == "act" else np.arange(40)
    for r in range(12):
        c = (W[r].double() / float(res.scale[r, 0])).numpy()
        z = gptq_round(Hn, c, -8.0, 7.0, order=perm)
        assert np.array_equal(z, res.codes[r].numpy().astype(np.float64)), f"row {r}"
    # the float32 entry point agrees on these well-conditioned rows too
    cw = compress_matrix("w", W, parse_recipe(f"int4:channel:gptq:damp=0:order={order}"), H)
    assert cw.codes is not None
    assert torch.equal(cw.codes.long(), res.codes)


@pytest.mark.parametrize("criterion", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize("sparsity", [30, 50, 75])
def test_unstructured_sparsity_is_exact_per_row(criterion: str, sparsity: int) -> None:
    W, H = _correlated(10, 150, 9)
    cw = compress_matrix("w", W, parse_recipe(f"prune{sparsity}:{criterion}"), H)
    assert cw.mask is not None and cw.values is not None and cw.values.dtype == torch.float16
    assert torch.all(cw.mask.sum(1) == 150 - sparsity * 150 // 100)
    assert torch.all(cw.dequantize()[~cw.mask] == 0)


@pytest.mark.parametrize("criterion", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize(("n", "m"), [(2, 4), (4, 8), (1, 3)])
def test_nm_pattern_holds(criterion: str, n: int, m: int) -> None:
    cols = 9 * m + (m - 1)  # a ragged tail of m - 1 columns
    W, H = _correlated(8, cols, 10)
    cw = compress_matrix("w", W, parse_recipe(f"{n}:{m}:{criterion}"), H)
    assert cw.mask is not None
    full = cols // m * m
    assert torch.all(cw.mask[:, :full].reshape(8, -1, m).sum(-1) == n)
    tail = m - 1
    assert torch.all(cw.mask[:, full:].sum(1) == tail - tail * (m - n) // m)


def test_magnitude_keeps_the_largest_of_each_row() -> None:
    W = torch.randn(5, 40, generator=_gen(11))
    cw = compress_matrix("w", W, parse_recipe("prune25:magnitude"))
    assert cw.mask is not None
    kept_min = torch.where(cw.mask, W.abs(), torch.inf).amin(1)
    dropped_max = torch.where(cw.mask, -torch.inf, W.abs()).amax(1)
    assert torch.all(kept_min >= dropped_max)


def test_wanda_scores_by_input_norm() -> None:
    W = torch.ones(3, 8)
    H = torch.diag(torch.arange(1.0, 9.0))
    cw = compress_matrix("w", W, parse_recipe("prune50:wanda"), H)
    assert cw.mask is not None
    assert torch.equal(cw.mask, torch.tensor([False] * 4 + [True] * 4).expand(3, 8))


@pytest.mark.parametrize("pattern", ["prune50", "prune75", "2:4"])
def test_sparsegpt_beats_magnitude_on_correlated_inputs(pattern: str) -> None:
    W, H = _correlated(24, 128, 12)
    e_sg = _err(W, compress_matrix("w", W, parse_recipe(f"{pattern}:sparsegpt"), H).dequantize(), H)
    e_mag = _err(W, compress_matrix("w", W, parse_recipe(f"{pattern}:magnitude"), H).dequantize(), H)
    assert e_sg < 0.9 * e_mag


def test_sparsegpt_equals_a_fixed_mask_sweep_with_its_own_mask() -> None:
    W, H = _correlated(12, 300, 13)
    cw = compress_matrix("w", W, parse_recipe("prune60:sparsegpt"), H)
    assert cw.mask is not None and cw.values is not None
    again = obs_sweep(W, H, damp=0.01, order="natural", mask=cw.mask)
    assert torch.allclose(again.weight.half().float(), cw.values.float(), atol=1e-3)


@pytest.mark.parametrize(
    "recipe",
    [
        "prune50:sparsegpt+int4:g32:gptq",
        "2:4:wanda+uint4:g32:gptq",
        "prune50:magnitude+int4:channel:rtn",
        "2:4:sparsegpt+nf4:g32:rtn",
    ],
)
def test_combined_keeps_the_mask(recipe: str) -> None:
    W, H = _correlated(10, 96, 14)
    cw = compress_matrix("w", W, parse_recipe(recipe), H)
    assert cw.mask is not None and cw.codes is not None and cw.values is None
    assert torch.all(cw.dequantize()[~cw.mask] == 0)
    assert torch.all(cw.mask.sum(1) == 48)
    pruned_only = compress_matrix("w", W, parse_recipe(recipe.split("+")[0]), H)
    assert pruned_only.mask is not None and torch.equal(cw.mask, pruned_only.mask)


def test_gptq_with_mask_beats_rtn_of_the_pruned_weights() -> None:
    W, H = _correlated(16, 128, 15)
    joint = _err(W, compress_matrix("w", W, parse_recipe("prune50:wanda+int4:g32:gptq"), H).dequantize(), H)
    plain = _err(W, compress_matrix("w", W, parse_recipe("prune50:wanda+int4:g32:rtn"), H).dequantize(), H)
    assert joint < 0.95 * plain


def test_rtn_dequantize_reproduces_quantize_rtn() -> None:
    W = torch.randn(7, 50, generator=_gen(16))
    q = Quant("uint3", 16, "rtn")
    _, _, _, out = quantize_rtn(W, q)
    assert torch.equal(compress_matrix("w", W, parse_recipe("uint3:g16:rtn")).dequantize(), out)


def test_dead_inputs_and_conv_shape() -> None:
    W, H = _correlated(8, 36, 17)
    H[5, :] = 0
    H[:, 5] = 0
    cw = compress_matrix("conv", W, parse_recipe("int4:channel:gptq"), H, shape=(8, 4, 3, 3))
    out = cw.dequantize()
    assert out.shape == (8, 4, 3, 3) and torch.isfinite(out).all()
    sg = compress_matrix("conv", W, parse_recipe("prune50:sparsegpt"), H, shape=(8, 4, 3, 3))
    assert sg.mask is not None and torch.all(sg.mask.sum(1) == 18)


def test_needs_calibration() -> None:
    assert needs_calibration(parse_recipe("int4:g128:gptq"))
    assert needs_calibration(parse_recipe("prune50:wanda"))
    assert needs_calibration(parse_recipe("2:4:sparsegpt+int4:g128:rtn"))
    assert not needs_calibration(parse_recipe("int4:g128:rtn"))
    assert not needs_calibration(parse_recipe("prune50:magnitude+nf4:g64:absmax"))


def test_bad_input_raises() -> None:
    W, H = _correlated(4, 16, 18)
    for recipe in ("int4:channel:gptq", "prune50:wanda", "prune50:sparsegpt"):
        with pytest.raises(PvqInputError, match="needs calibration"):
            compress_matrix("w", W, parse_recipe(recipe), None)
    bad = W.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(PvqInputError, match="NaN"):
        compress_matrix("w", bad, parse_recipe("int4:channel:rtn"))
    with pytest.raises(PvqInputError, match="H must be"):
        compress_matrix("w", W, parse_recipe("int4:channel:gptq"), H[:8, :8])
    Hn = H.clone()
    Hn[1, 2] = float("inf")
    with pytest.raises(PvqInputError, match="H has NaN"):
        compress_matrix("w", W, parse_recipe("int4:channel:gptq"), Hn)
    with pytest.raises(PvqInputError, match="does not flatten"):
        compress_matrix("w", W, parse_recipe("int4:channel:rtn"), shape=(4, 3, 3))
    with pytest.raises(PvqInputError, match="2-D"):
        compress_matrix("w", W.reshape(-1), parse_recipe("int4:channel:rtn"))
