"""Expected quantization/pruning errors: paper numbers, closed forms vs quadrature, optimal scale, Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from pvq.formats import Format, get_format
from pvq.metrics import snr_db
from pvq.theory import (
    Gaussian,
    Laplace,
    TruncatedStudentT,
    Uniform,
    expected_prune_mse,
    expected_quant_mse,
    optimal_quant,
    optimal_quant_error,
    prune_threshold,
    quant_error,
    quant_mse_many,
    theory_rows,
)


def test_gaussian_int4_snr_19_26_db() -> None:
    # Paper Sec. 3.3 / Fig. 1: 19.1 dB (on a slightly different grid; see the narrow grid below).
    scale, mse = optimal_quant(Gaussian(), 4)
    assert snr_db(1.0, mse) == pytest.approx(19.26, abs=0.02)
    assert scale * 8 == pytest.approx(2.709, abs=0.01)  # clipping at the negative end -8·s


def test_gaussian_int4_narrow_grid() -> None:
    # symmetric grid with 2^b - 1 levels {-7..7}: 18.90 dB; the 2^b-level mid-rise grid: 19.38 dB
    _, mse = optimal_quant(Gaussian(), "int4_narrow")
    assert snr_db(1.0, mse) == pytest.approx(18.90, abs=0.02)
    midrise = Format("midrise4", 4, "int", tuple(np.arange(-7.5, 8.0)))
    _, mse = optimal_quant(Gaussian(), midrise)
    assert snr_db(1.0, mse) == pytest.approx(19.38, abs=0.02)  # Max (1960), 16-level uniform: MSE 0.01154


def test_gaussian_prune_75_percent_5_58_db() -> None:
    mse = expected_prune_mse(Gaussian(), 0.75)
    assert snr_db(1.0, mse) == pytest.approx(5.58, abs=0.02)  # paper: 5.6 dB
    # closed form: 2∫_0^t w²φ = (2Φ(t) - 1) - 2tφ(t), t = Φ^{-1}(0.875)
    t = prune_threshold(Gaussian(), 0.75)
    phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    assert mse == pytest.approx(0.75 - 2 * t * phi, rel=1e-12)


@pytest.mark.parametrize("dist", [Gaussian(), Laplace(), Uniform(), TruncatedStudentT(2.0, 30.0)], ids=str)
def test_prune_limits(dist) -> None:
    assert expected_prune_mse(dist, 0.0) == 0.0
    assert expected_prune_mse(dist, 1.0) == pytest.approx(dist.variance(), rel=1e-12)
    s = np.linspace(0, 1, 11)
    errs = [expected_prune_mse(dist, x) for x in s]
    assert np.all(np.diff(errs) > 0)
    with pytest.raises(ValueError):
        expected_prune_mse(dist, 1.2)


def test_truncated_t_nu2_win_regions() -> None:
    # R = 10 (kurtosis ≈ 8): quantization wins at 3..8 bits
    rows = {r["bits"]: r for r in theory_rows(TruncatedStudentT(2.0, 10.0), range(2, 9))}
    assert rows[4]["kurtosis"] == pytest.approx(8.0, abs=0.1)
    for b in range(3, 9):
        assert rows[b]["quant_snr_db"] > rows[b]["prune_snr_db"], b
    # R = 100 (kurtosis ≈ 160): pruning wins at 2..3 bits, quantization at 8 bits
    rows = {r["bits"]: r for r in theory_rows(TruncatedStudentT(2.0, 100.0), range(2, 9))}
    assert rows[4]["kurtosis"] == pytest.approx(160.0, abs=1.0)
    for b in (2, 3):
        assert rows[b]["prune_snr_db"] > rows[b]["quant_snr_db"], b
        assert rows[b]["winner"] == "prune"
    assert rows[8]["quant_snr_db"] > rows[8]["prune_snr_db"]


def test_uniform_rounding_error_is_delta_squared_over_12() -> None:
    # cells aligned with the support: every cell holds a uniform density -> exactly Δ²/12, no clipping
    fmt = Format("midrise8", 8, "int", tuple(np.arange(-127.5, 128.0)))
    err = quant_error(Uniform(1.0), fmt, 1.0 / 128)
    assert err.mse == pytest.approx((1 / 128) ** 2 / 12, rel=1e-9)
    # the half cells beyond ±127.5/128 are clipping: 2 ∫_0^{Δ/2} x² / 2 dx = (Δ/2)³ / 3
    assert err.clipping == pytest.approx((1 / 256) ** 3 / 3, rel=1e-9)
    # fine symmetric-signed int8 grid on a Gaussian: rounding ≈ Δ²/12 when clipping far out
    s = 8.0 / 128
    err = quant_error(Gaussian(), 8, s)
    assert err.rounding == pytest.approx(s * s / 12, rel=1e-4)
    assert err.clipping < 1e-12


def _quad_quant_mse(dist, levels: np.ndarray, scale: float) -> tuple[float, float]:
    """Eq. (2) by adaptive quadrature over every cell (the reference for the closed forms)."""
    q = levels * scale
    mids = (q[1:] + q[:-1]) / 2
    edges = np.concatenate([[dist.lo], mids, [dist.hi]])
    total = 0.0
    for i, qi in enumerate(q):
        a, b = max(edges[i], dist.lo), min(edges[i + 1], dist.hi)
        if b > a:
            total += integrate.quad(
                lambda w, c=qi: (w - c) ** 2 * float(dist.pdf(w)), a, b, epsabs=0, epsrel=1e-11
            )[0]
    clip = 0.0
    for a, b, w0 in ((dist.lo, q[0], q[0]), (q[-1], dist.hi, q[-1])):
        a, b = max(a, dist.lo), min(b, dist.hi)
        if b > a:
            clip += integrate.quad(
                lambda w, c=w0: (w - c) ** 2 * float(dist.pdf(w)), a, b, epsabs=0, epsrel=1e-11
            )[0]
    return total, clip


@pytest.mark.parametrize(
    "dist",
    [Gaussian(), Laplace(0.5), Uniform(2.0), TruncatedStudentT(2.0, 10.0), TruncatedStudentT(0.8, 40.0)],
    ids=str,
)
@pytest.mark.parametrize("fmt", ["int3", "int4_narrow", "uint3", "fp4_e2m1", "nf4", "fp8_e4m3"])
def test_quant_mse_closed_form_vs_quadrature(dist, fmt: str) -> None:
    f = get_format(fmt)
    for clip in (0.8, 2.5, 7.0):
        scale = clip / f.max_level
        err = quant_error(dist, f, scale)
        ref_total, ref_clip = _quad_quant_mse(dist, f.levels(), scale)
        assert err.mse == pytest.approx(ref_total, rel=1e-7, abs=1e-15)
        assert err.clipping == pytest.approx(ref_clip, rel=1e-7, abs=1e-15)
        assert err.rounding + err.clipping == pytest.approx(err.mse, rel=1e-12)


@pytest.mark.parametrize(
    "dist",
    [Gaussian(), Laplace(), Uniform(), TruncatedStudentT(2.0, 10.0), TruncatedStudentT(2.0, 300.0)],
    ids=str,
)
@pytest.mark.parametrize("fmt", ["int2", "int3", "int4", "int6", "fp4_e2m1", "nf4", "fp3"])
def test_optimal_scale_beats_dense_scan(dist, fmt: str) -> None:
    f = get_format(fmt)
    err = optimal_quant_error(dist, f)
    hi = dist.hi if math.isfinite(dist.hi) else float(dist.quantile(1 - 1e-12))
    n = 20000 if f.num_levels <= 16 else 4000
    scales = np.geomspace(float(dist.quantile(0.52)), 2 * hi, n) / f.max_level
    scan, _ = quant_mse_many(dist, f.levels(), scales)
    assert err.mse <= scan.min() * (1 + 1e-9)
    assert err.mse == pytest.approx(expected_quant_mse(dist, f, err.scale), rel=1e-12)


def test_quant_error_bad_scale() -> None:
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="scale"):
            quant_error(Gaussian(), 4, bad)
    with pytest.raises(TypeError):
        quant_error(Gaussian(), 4.5, 1.0)  # type: ignore[arg-type]


def _sample(dist, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return dist.quantile(rng.uniform(size=n))


@pytest.mark.parametrize(
    "dist,fmt",
    [
        (Gaussian(), "int4"),
        (Gaussian(), "int2"),
        (Gaussian(), "fp4_e2m1"),
        (Gaussian(), "nf4"),
        (Laplace(), "int3"),
        (Uniform(), "int4"),
        (TruncatedStudentT(2.0, 10.0), "int4"),
        (TruncatedStudentT(2.0, 10.0), "int8"),
    ],
    ids=str,
)
def test_monte_carlo_agrees_within_0_05_db(dist, fmt: str) -> None:
    n = 1_000_000
    w = _sample(dist, n, seed=7)
    signal = float(np.mean(w * w))
    f = get_format(fmt)
    err = optimal_quant_error(dist, f)
    q_snr_mc = snr_db(signal, float(np.mean((w - f.quantize(w, err.scale)) ** 2)))
    assert q_snr_mc == pytest.approx(snr_db(dist.variance(), err.mse), abs=0.05)
    sparsity = 1 - f.bits / 16
    k = int(np.floor(sparsity * n))
    pruned = w.copy()
    pruned[np.argsort(np.abs(w), kind="stable")[:k]] = 0.0  # the published code's magnitude pruning
    p_snr_mc = snr_db(signal, float(np.mean((w - pruned) ** 2)))
    assert p_snr_mc == pytest.approx(snr_db(dist.variance(), expected_prune_mse(dist, sparsity)), abs=0.05)


@pytest.mark.parametrize(
    "dist", [Uniform(), TruncatedStudentT(2.0, 0.5), TruncatedStudentT(0.3, 5.0)], ids=str
)
def test_optimal_scale_on_bounded_support_with_many_kinks(dist) -> None:
    # NF8 on a bounded support: the error has a kink wherever a level crosses the support's end, and the
    # optimum stretches the outer levels beyond it (clipping threshold > R); a dense wide scan never wins.
    f = get_format("nf8")
    err = optimal_quant_error(dist, f)
    scales = np.geomspace(float(dist.quantile(0.501)), 50 * dist.hi, 2500) / f.max_level
    scan, _ = quant_mse_many(dist, f.levels(), scales)
    assert err.mse <= scan.min() * (1 + 1e-9)


def test_theory_rows_mask_overhead() -> None:
    plain = theory_rows(Gaussian(), [4])[0]
    charged = theory_rows(Gaussian(), [4], mask_overhead=True)[0]
    assert charged["sparsity"] == pytest.approx(1 - 3 / 16)  # 16-bit values + 1 mask bit in 4 bits
    assert charged["prune_snr_db"] < plain["prune_snr_db"]
    assert charged["quant_snr_db"] == pytest.approx(plain["quant_snr_db"])
