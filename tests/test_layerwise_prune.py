"""Exact pruning equals brute force over all supports; heuristics never beat it; time limits give a gap."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from pvq.layerwise import (
    magnitude_mask,
    prune_count,
    prune_exact,
    prune_magnitude,
    prune_obs,
    prune_swap,
    refit,
    row_error,
)


def _problem(rng, n, m=None, relu=False):
    m = m or 3 * n
    X = rng.standard_normal((m, n)) @ rng.standard_normal((n, n))
    if relu:
        X = np.maximum(X + 0.3, 0.0)
    return X.T @ X, rng.standard_normal(n)


def _brute(G, w0, k):
    n = w0.shape[0]
    best = np.inf
    for S in itertools.combinations(range(n), k):
        keep = np.zeros(n, dtype=bool)
        keep[list(S)] = True
        best = min(best, row_error(G, w0, refit(G, w0, keep)))
    return best


@pytest.mark.parametrize("bits", range(1, 9))
def test_exact_pruning_equals_brute_force(rng, bits):
    for trial in range(6):
        n = int(rng.integers(6, 15))
        G, w0 = _problem(rng, n, relu=trial % 2 == 1)
        k = prune_count(n, bits)
        res = prune_exact(G, w0, k)
        assert res.status == "optimal" and res.gap == 0.0
        assert np.count_nonzero(res.solution) <= k
        assert res.value == pytest.approx(row_error(G, w0, res.solution), rel=1e-9)
        assert res.value == pytest.approx(_brute(G, w0, k), rel=1e-8, abs=1e-12)
        for heur in (prune_magnitude, prune_obs, prune_swap):
            assert heur(G, w0, k).value >= res.value * (1 - 1e-9)


def test_magnitude_keeps_largest(rng):
    w = np.array([0.1, -3.0, 2.0, 0.5, -0.2])
    assert magnitude_mask(w, 2).tolist() == [False, True, True, False, False]
    G = np.eye(5)
    res = prune_magnitude(G, w, 2)  # identity G: the refit keeps the kept weights unchanged
    assert np.allclose(res.solution, [0, -3.0, 2.0, 0, 0])
    assert res.value == pytest.approx(0.1**2 + 0.5**2 + 0.2**2)


def test_prune_count_is_floor_nb_over_16():
    assert [prune_count(32, b) for b in (2, 4, 8)] == [4, 8, 16]
    assert prune_count(36, 3) == 6 and prune_count(9, 2) == 1


def test_time_limit_returns_gap_not_hang(rng):
    n = 96
    G, w0 = _problem(rng, n, relu=True)
    t0 = time.perf_counter()
    res = prune_exact(G, w0, prune_count(n, 8), time_limit=0.2)
    assert time.perf_counter() - t0 < 10.0
    if res.status == "time_limit":
        assert 0.0 <= res.gap <= 1.0 and res.bound <= res.value
    assert res.value <= prune_swap(G, w0, prune_count(n, 8)).value * (1 + 1e-12)


def test_singular_gram_uses_ridge_and_says_so(rng):
    X = rng.standard_normal((30, 8))
    X[:, 3] = 0.0  # a dead input
    G = X.T @ X
    w0 = rng.standard_normal(8)
    res = prune_exact(G, w0, 4)
    assert any("ridge" in note for note in res.notes)
    assert res.value == pytest.approx(_brute(G, w0, 4), rel=1e-6)


@pytest.mark.parametrize("m", [1, 2])
def test_keep_more_is_the_best_completion(rng, m):
    """The exact leaf of the search (one or two weights left to keep) equals brute force over the free set."""
    from pvq.layerwise._prune_kernels import FREE, KEPT, PRUNED, keep_more

    for trial in range(8):
        n = int(rng.integers(6, 12))
        G, w0 = _problem(rng, n, relu=trial % 2 == 1)
        st = rng.choice([FREE, KEPT, PRUNED], size=n, p=[0.5, 0.3, 0.2]).astype(np.int8)
        st[:m] = FREE  # at least m free weights
        b = G @ w0
        v, i, j, _ = keep_more(st, G, b, float(w0 @ b), m)
        assert i >= 0
        free = np.flatnonzero(st == FREE)
        best = np.inf
        for A in itertools.combinations(free, m):
            keep = st == KEPT
            keep[list(A)] = True
            best = min(best, row_error(G, w0, refit(G, w0, keep)))
        assert v == pytest.approx(best, rel=1e-8, abs=1e-10)
        keep = st == KEPT
        keep[[i] + ([j] if m == 2 else [])] = True
        assert row_error(G, w0, refit(G, w0, keep)) == pytest.approx(best, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("variant", [{"eigen": "diag", "keep_leaves": False}, {}])
def test_search_without_heuristic_equals_brute_force(rng, bits, variant):
    """The search alone (no heuristic incumbent), with today's node bounds and leaves and with the
    reference's, reaches the brute-force optimum."""
    for trial in range(6):
        n = int(rng.integers(8, 15))
        G, w0 = _problem(rng, n, relu=trial % 2 == 1)
        k = prune_count(n, bits)
        res = prune_exact(G, w0, k, heuristic=False, **variant)
        assert res.status == "optimal"
        assert res.value == pytest.approx(_brute(G, w0, k), rel=1e-8, abs=1e-12)


def test_eigen_bound_never_above_the_cost_of_pruning(rng):
    """Both scalings of the node eigenvalue bound: ``lam * sum_Z e_j w_j^2 <= err(prune Z)`` from the
    dense least-squares optimum, for random sets Z."""
    from pvq.layerwise._prune_bnb import _eigen_scalings

    for trial in range(10):
        n = int(rng.integers(5, 12))
        G, w0 = _problem(rng, n, relu=trial % 2 == 1)
        scal, lams = _eigen_scalings(G, np.linalg.inv(G), "both")
        assert scal.shape == (2, n) and (lams >= 0).all()
        for _ in range(10):
            Z = rng.random(n) < 0.5
            cost = row_error(G, w0, refit(G, w0, ~Z))
            for e, lam in zip(scal, lams, strict=True):
                assert lam * float((e * w0**2)[Z].sum()) <= cost * (1 + 1e-9) + 1e-12
