"""Distributions: closed-form partial moments vs quadrature, kurtosis, quantiles, the R(kurtosis) solver."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from pvq.theory import (
    Gaussian,
    Laplace,
    TruncatedStudentT,
    Uniform,
    get_distribution,
    truncated_t_kurtosis,
    truncated_t_range_for_kurtosis,
)

DISTS = [
    Gaussian(),
    Gaussian(sigma=0.3),
    Laplace(),
    Laplace(b=2.5),
    Uniform(),
    Uniform(a=4.0),
    TruncatedStudentT(2.0, 10.0),
    TruncatedStudentT(2.0, 100.0),
    TruncatedStudentT(0.5, 20.0),
    TruncatedStudentT(1.0, 5.0),
    TruncatedStudentT(3.0, 50.0),
    TruncatedStudentT(7.5, 3.0),
]


@pytest.mark.parametrize("dist", DISTS, ids=lambda d: d.describe())
@pytest.mark.parametrize("k", [0, 1, 2, 4])
def test_partial_moments_match_quadrature(dist, k: int) -> None:
    for x in (0.05, 0.7, 2.0, 5.5, 40.0, -1.3, math.inf):
        closed = float(dist.partial_moment(k, x))
        ref = dist.partial_moment_quad(k, x)
        assert closed == pytest.approx(ref, rel=1e-9, abs=1e-14), (x, closed, ref)


@pytest.mark.parametrize("dist", DISTS, ids=lambda d: d.describe())
def test_pdf_cdf_quantile_consistent(dist) -> None:
    hi = dist.hi
    top = hi if math.isfinite(hi) else 60.0
    pts = [p for p in (-10.0, -1.0, 0.0, 1.0, 10.0) if -top < p < top]
    total = integrate.quad(lambda w: float(dist.pdf(w)), -top, top, limit=400, points=pts)[0]
    if math.isinf(hi):
        total += 2 * (0.5 - float(dist.partial_moment(0, 60.0)))
    assert total == pytest.approx(1.0, abs=1e-9)
    p = np.array([1e-6, 0.01, 0.3, 0.5, 0.8, 0.875, 0.999999])
    np.testing.assert_allclose(dist.cdf(dist.quantile(p)), p, rtol=1e-9, atol=1e-12)
    assert float(dist.cdf(dist.lo)) == pytest.approx(0.0, abs=1e-15)
    assert float(dist.cdf(dist.hi)) == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(ValueError):
        dist.quantile(1.5)


def test_known_kurtosis() -> None:
    assert Gaussian(2.0).kurtosis() == pytest.approx(3.0)
    assert Laplace(0.7).kurtosis() == pytest.approx(6.0)
    assert Uniform(3.0).kurtosis() == pytest.approx(1.8)
    assert Gaussian(2.0).variance() == pytest.approx(4.0)
    assert Laplace(0.7).variance() == pytest.approx(2 * 0.49)
    assert Uniform(3.0).variance() == pytest.approx(3.0)
    # t with nu > 4: kurtosis -> 3 + 6 / (nu - 4) as R -> inf
    assert float(truncated_t_kurtosis(5.0, 1e6)) == pytest.approx(9.0, rel=1e-3)
    # R -> 0: the truncated t becomes uniform
    assert float(truncated_t_kurtosis(2.0, 1e-3)) == pytest.approx(1.8, rel=1e-5)


@pytest.mark.parametrize("R,expected", [(10.0, 7.9595), (100.0, 159.666)])
def test_truncated_t_nu2_kurtosis_vs_quadrature(R: float, expected: float) -> None:
    d = TruncatedStudentT(2.0, R)
    m2 = 2 * d.partial_moment_quad(2, R)
    m4 = 2 * d.partial_moment_quad(4, R)
    assert d.kurtosis() == pytest.approx(m4 / m2**2, rel=1e-9)
    assert d.kurtosis() == pytest.approx(expected, rel=1e-4)


def test_kurtosis_is_increasing_in_range() -> None:
    r = np.geomspace(0.01, 1e5, 200)
    k = truncated_t_kurtosis(2.0, r)
    assert np.all(np.diff(k) > 0)


@pytest.mark.parametrize("nu,kurt", [(2.0, 8.0), (2.0, 160.0), (2.0, 2.5), (1.0, 30.0), (6.0, 5.0)])
def test_range_for_kurtosis_roundtrip(nu: float, kurt: float) -> None:
    R = truncated_t_range_for_kurtosis(nu, kurt)
    assert float(truncated_t_kurtosis(nu, R)) == pytest.approx(kurt, rel=1e-10)
    d = get_distribution("student-t", nu=nu, kurtosis=kurt)
    assert d.kurtosis() == pytest.approx(kurt, rel=1e-10)


def test_range_for_kurtosis_unreachable() -> None:
    with pytest.raises(ValueError, match="not reachable"):
        truncated_t_range_for_kurtosis(2.0, 1.7)
    with pytest.raises(ValueError, match="not reachable"):
        truncated_t_range_for_kurtosis(6.0, 7.0)  # limit is 3 + 6/2 = 6


def test_get_distribution_bad_args() -> None:
    with pytest.raises(ValueError, match="unknown distribution"):
        get_distribution("cauchy")
    with pytest.raises(ValueError, match="no parameter"):
        get_distribution("gaussian", nu=2.0)
    with pytest.raises(ValueError, match="not both"):
        get_distribution("student-t", R=3.0, kurtosis=5.0)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive"):
            get_distribution("student-t", nu=bad)
        with pytest.raises(ValueError, match="positive"):
            Gaussian(bad)
