"""Property tests (hypothesis): scale invariance of SNR, optimality of the found scale, monotone pruning error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvq.metrics import snr_db
from pvq.theory import (
    Gaussian,
    Laplace,
    TruncatedStudentT,
    expected_prune_mse,
    expected_quant_mse,
    optimal_quant_error,
)

SETTINGS = settings(max_examples=15, deadline=None)


@SETTINGS
@given(sigma=st.floats(0.01, 100.0), bits=st.integers(2, 8), sparsity=st.floats(0.05, 0.95))
def test_snr_is_scale_free(sigma: float, bits: int, sparsity: float) -> None:
    a, b = Gaussian(1.0), Gaussian(sigma)
    qa, qb = optimal_quant_error(a, bits), optimal_quant_error(b, bits)
    assert snr_db(b.variance(), qb.mse) == pytest.approx(snr_db(a.variance(), qa.mse), abs=1e-6)
    assert qb.scale == pytest.approx(sigma * qa.scale, rel=1e-5)
    pa, pb = expected_prune_mse(a, sparsity), expected_prune_mse(b, sparsity)
    assert snr_db(b.variance(), pb) == pytest.approx(snr_db(a.variance(), pa), abs=1e-9)


@SETTINGS
@given(
    nu=st.floats(0.5, 8.0),
    R=st.floats(0.5, 200.0),
    bits=st.integers(2, 6),
    factors=st.lists(st.floats(0.3, 3.0), min_size=5, max_size=5),
)
def test_optimal_scale_beats_perturbed_scales(nu: float, R: float, bits: int, factors: list[float]) -> None:
    dist = TruncatedStudentT(nu, R)
    best = optimal_quant_error(dist, bits)
    assert 0 <= best.rounding <= best.mse and 0 <= best.clipping <= best.mse
    for f in factors:
        assert best.mse <= expected_quant_mse(dist, bits, best.scale * f) * (1 + 1e-9)


@SETTINGS
@given(b=st.floats(0.1, 10.0), s=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6, unique=True))
def test_pruning_error_monotone_in_sparsity(b: float, s: list[float]) -> None:
    dist = Laplace(b)
    s = sorted(s)
    errs = [expected_prune_mse(dist, x) for x in s]
    assert all(e2 >= e1 for e1, e2 in zip(errs[:-1], errs[1:], strict=True))
    assert errs[-1] <= dist.variance() * (1 + 1e-12)
