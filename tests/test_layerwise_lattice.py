"""LLL reduction: same lattice, same quadratic form, reduced (size-reduced, Lovász condition)."""

from __future__ import annotations

import numpy as np
import pytest

from pvq.layerwise._lattice import lll_reduce


@pytest.mark.parametrize("k", [1, 2, 5, 12, 30])
def test_lll_is_a_unimodular_change_of_basis(rng, k):
    U = np.linalg.qr(rng.standard_normal((k, k)))[0]
    G = (U * np.geomspace(1e-4, 1.0, k)) @ U.T
    R0 = np.linalg.cholesky(G + 1e-12 * np.eye(k)).T
    R, T, Ti = lll_reduce(np.ascontiguousarray(R0), 0.99)
    assert np.array_equal(T, np.round(T)) and np.array_equal(Ti, np.round(Ti))
    assert np.allclose(T @ Ti, np.eye(k), atol=0)
    assert abs(abs(np.linalg.det(T)) - 1.0) < 1e-6
    assert np.allclose(T.T @ (R0.T @ R0) @ T, R.T @ R, rtol=1e-9, atol=1e-12)
    assert np.allclose(R, np.triu(R)) and (np.diag(R) > 0).all()
    d = np.diag(R)
    for i in range(1, k):  # Lovász condition and size reduction
        assert 0.99 * d[i - 1] ** 2 <= R[i - 1, i] ** 2 + d[i] ** 2 + 1e-12
        assert np.all(np.abs(R[:i, i]) <= 0.5 * d[:i] + 1e-9)


def test_lll_shortens_a_skewed_basis():
    # columns (1, 0) and (1000, 1): reduced, the second becomes (0, 1)
    R0 = np.array([[1.0, 1000.0], [0.0, 1.0]])
    R, T, _ = lll_reduce(R0, 0.99)
    assert np.allclose(np.sort(np.linalg.norm(R, axis=0)), [1.0, 1.0])
    assert np.allclose(np.abs(T[:, 1]), [1000.0, 1.0])
