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
    prune_exact(G[:8, :8], w0[:8], 2)  # load the compiled kernels outside the time limit
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


def _ill_conditioned(rng, n):
    """A Gram matrix with condition number about 1e8 (a few near-collinear inputs, as in real layers)."""
    X = rng.standard_normal((3 * n, n))
    X[:, 1] = X[:, 0] + 1e-4 * rng.standard_normal(3 * n)
    X[:, 3] = 0.5 * X[:, 2] - X[:, 0] + 1e-3 * rng.standard_normal(3 * n)
    return X.T @ X, rng.standard_normal(n)


def _keep_side_state(G, w0, st):
    """Schur complement of the free set given the kept set, residual correlations and err(kept), from scratch."""
    from pvq.layerwise._prune_kernels import KEPT

    b = G @ w0
    K = np.flatnonzero(st == KEPT)
    if K.size == 0:
        return G.copy(), b.copy(), float(w0 @ b)
    C = np.linalg.solve(G[np.ix_(K, K)], np.column_stack([G[K, :], b[K]]))
    n = w0.shape[0]
    return G - G[:, K] @ C[:, :n], b - G[:, K] @ C[:, n], float(w0 @ b - b[K] @ C[:, n])


@pytest.mark.parametrize("m", [1, 2, 3])
def test_keep_leaf_is_the_best_completion(rng, m):
    """The exact leaf of the search (at most three weights left to keep) equals brute force over the free
    set, on random, ReLU and ill-conditioned Gram matrices; with an incumbent cut-off it reports "nothing
    better" exactly when brute force finds nothing better."""
    from pvq.layerwise._prune_kernels import FREE, KEPT, PRUNED, keep_leaf

    for trial in range(12):
        n = int(rng.integers(7, 13))
        G, w0 = _ill_conditioned(rng, n) if trial % 3 == 2 else _problem(rng, n, relu=trial % 3 == 1)
        st = rng.choice([FREE, KEPT, PRUNED], size=n, p=[0.5, 0.3, 0.2]).astype(np.int8)
        st[:m] = FREE  # at least m free weights
        S, g, base = _keep_side_state(G, w0, st)
        v, i, j, l = keep_leaf(st, S, g, base, m, -1.0)
        if (
            i == -1
        ):  # numerically singular block: the search branches instead (allowed, but not on every trial)
            assert trial % 3 == 2
            continue
        free = np.flatnonzero(st == FREE)
        errs = {}
        for A in itertools.combinations(free, m):
            keep = st == KEPT
            keep[list(A)] = True
            errs[A] = row_error(G, w0, refit(G, w0, keep))
        best = min(errs.values())
        assert v == pytest.approx(best, rel=1e-7, abs=1e-9)
        chosen = [x for x in (i, j, l) if x >= 0]
        assert len(chosen) == m and all(st[x] == FREE for x in chosen)
        keep = st == KEPT
        keep[chosen] = True
        assert row_error(G, w0, refit(G, w0, keep)) == pytest.approx(best, rel=1e-7, abs=1e-9)
        # entries outside the free set are stale in the search: never used
        out = st != FREE
        Sn, gn = S.copy(), g.copy()
        Sn[out, :] = np.nan
        Sn[:, out] = np.nan
        gn[out] = np.nan
        assert keep_leaf(st, Sn, gn, base, m, -1.0) == (v, i, j, l)
        # incumbent cut-off: only completions below UB count
        for UB in (best * 0.999, best * 1.001 + 1e-12):
            v2, i2, _, _ = keep_leaf(st, S, g, base, m, base - UB)
            if best < UB:
                assert i2 >= 0 and v2 == pytest.approx(best, rel=1e-7, abs=1e-9)
            else:
                assert i2 == -2


def test_keep_into_equals_the_schur_complement_from_scratch(rng):
    """One sweep of the keep-side state equals the state recomputed with the weight kept."""
    from pvq.layerwise._prune_kernels import FREE, KEPT, PRUNED, keep_into

    for trial in range(10):
        n = int(rng.integers(6, 12))
        G, w0 = _ill_conditioned(rng, n) if trial % 2 else _problem(rng, n, relu=True)
        st = rng.choice([FREE, KEPT, PRUNED], size=n, p=[0.6, 0.2, 0.2]).astype(np.int8)
        st[0] = FREE
        S, g, base = _keep_side_state(G, w0, st)
        st2 = st.copy()
        st2[0] = KEPT
        Sd, gd = np.zeros_like(S), np.zeros_like(g)
        fall = keep_into(S, g, Sd, gd, 0, st2, np.empty(n, dtype=np.int64), G[0, 0])
        S2, g2, base2 = _keep_side_state(G, w0, st2)
        F = np.flatnonzero(st2 == FREE)
        assert base - fall == pytest.approx(base2, rel=1e-6, abs=1e-9)
        assert np.allclose(Sd[np.ix_(F, F)], S2[np.ix_(F, F)], rtol=1e-6, atol=1e-9 * np.abs(G).max())
        assert np.allclose(gd[F], g2[F], rtol=1e-6, atol=1e-9 * np.abs(G @ w0).max())


def test_sweeps_never_read_stale_entries(rng):
    """Both sweeps update whole rows, stale columns included (for speed): with every entry outside the
    remaining set made NaN, the pruned state still equals the OBS state from scratch and the kept
    state the Schur complement, and the NaNs stay outside the remaining set."""
    from pvq.layerwise._linalg import refit
    from pvq.layerwise._prune_kernels import FREE, KEPT, PRUNED, keep_into, prune_into

    for trial in range(8):
        n = int(rng.integers(6, 12))
        G, w0 = _ill_conditioned(rng, n) if trial % 2 else _problem(rng, n, relu=True)
        st = rng.choice([FREE, PRUNED], size=n, p=[0.7, 0.3]).astype(np.int8)
        st[:2] = FREE
        R = np.flatnonzero(st != PRUNED)
        H = np.full((n, n), np.nan)
        H[np.ix_(R, R)] = np.linalg.inv(G[np.ix_(R, R)])
        w = np.full(n, np.nan)
        w[R] = refit(G, w0, st != PRUNED)[R]
        st2 = st.copy()
        st2[0] = PRUNED
        Hd, wd = np.full((n, n), np.nan), np.full(n, np.nan)
        prune_into(w, H, wd, Hd, 0, st2, np.empty(n, dtype=np.int64))
        R2 = np.flatnonzero(st2 != PRUNED)
        assert np.allclose(Hd[np.ix_(R2, R2)], np.linalg.inv(G[np.ix_(R2, R2)]), rtol=1e-6, atol=1e-12)
        assert np.allclose(wd[R2], refit(G, w0, st2 != PRUNED)[R2], rtol=1e-6, atol=1e-9)
        # the keep side, from a state whose stale entries are NaN too
        st3 = st.copy()
        S, g, _ = _keep_side_state(G, w0, st3)
        F = np.flatnonzero(st3 == FREE)
        Sn, gn = np.full((n, n), np.nan), np.full(n, np.nan)
        Sn[np.ix_(F, F)], gn[F] = S[np.ix_(F, F)], g[F]
        st4 = st3.copy()
        st4[1] = KEPT
        Sd, gd = np.full((n, n), np.nan), np.full(n, np.nan)
        keep_into(Sn, gn, Sd, gd, 1, st4, np.empty(n, dtype=np.int64), G[1, 1])
        S2, g2, _ = _keep_side_state(G, w0, st4)
        F2 = np.flatnonzero(st4 == FREE)
        assert np.allclose(Sd[np.ix_(F2, F2)], S2[np.ix_(F2, F2)], rtol=1e-6, atol=1e-9 * np.abs(G).max())
        assert np.allclose(gd[F2], g2[F2], rtol=1e-6, atol=1e-9 * np.abs(G @ w0).max())


def test_sum_r_smallest_equals_the_sorted_sum(rng):
    """The sum of the r smallest behind the eigenvalue bounds (selection, or the total less the few
    largest): a lower bound on the sorted sum within rounding, ties included, both paths."""
    from pvq.layerwise._prune_kernels import FEW_LARGEST, _sum_r_smallest

    paths = set()
    for trial in range(3000):
        m = int(rng.integers(1, 50))
        r = int(rng.integers(0, m + 2))
        v = rng.integers(0, 4, size=m).astype(np.float64) if trial % 2 else rng.standard_normal(m)
        if trial % 3 == 0:
            # non-negative over 16 decades, as in the bounds
            v = np.abs(v) * 10.0 ** rng.integers(-8, 8, size=m)
        exact = float(np.sort(v)[:r].sum())
        got = _sum_r_smallest(v.copy(), m, r)
        slack = 1e-13 * np.abs(v).sum()
        assert exact - slack <= got <= exact + 1e-14 * np.abs(v).sum()
        paths.add(0 < r < m <= r + FEW_LARGEST)
    assert paths == {True, False}


def test_lambda_max_upper_is_an_upper_bound(rng):
    """The certified lambda_max (Frobenius / row sum, power iteration + Cholesky) is >= the true one."""
    from pvq.layerwise._prune_kernels import lambda_max_upper

    for trial in range(30):
        m = int(rng.integers(1, 20))
        X = rng.standard_normal((m + 3, m))
        if trial % 3 == 0:
            X[:, 0] *= 100.0  # one dominant eigenvalue
        A = X.T @ X
        true = float(np.linalg.eigvalsh(A)[-1])
        for certify in (False, True):
            mu = lambda_max_upper(A, m, certify, 0.0)
            assert mu >= true * (1 - 1e-12)
        assert lambda_max_upper(A, m, True, 0.0) <= min(np.linalg.norm(A), np.abs(A).sum(1).max()) * (
            1 + 1e-12
        )


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize(
    "variant",
    [
        {"eigen": "diag", "keep_leaves": False},
        {},
        {"leaf_keep": 2},
        {"spectral": 1},
        {"spectral": 2},
        {"threads": 2},
    ],
)
def test_search_without_heuristic_equals_brute_force(rng, bits, variant):
    """The search alone (no heuristic incumbent), with today's node bounds and leaves, with the
    reference's, with the node spectral bound, and with two threads, reaches the brute-force optimum."""
    for trial in range(6):
        n = int(rng.integers(8, 15))
        G, w0 = _ill_conditioned(rng, n) if trial % 3 == 2 else _problem(rng, n, relu=trial % 3 == 1)
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


def test_node_spectral_bound_never_above_the_cost_of_pruning(rng):
    """At a node (some weights pruned), the spectral bound on pruning r more of the free set is at most
    the cheapest such pruning (brute force over r-subsets), with and without the certified lambda_max."""
    from pvq.layerwise._prune_kernels import FREE, PRUNED, node_spectral_bound

    for trial in range(12):
        n = int(rng.integers(6, 11))
        G, w0 = _ill_conditioned(rng, n) if trial % 2 else _problem(rng, n, relu=True)
        st = np.where(rng.random(n) < 0.3, PRUNED, FREE).astype(np.int8)
        st[:3] = FREE
        R = st != PRUNED
        base = row_error(G, w0, refit(G, w0, R))
        H = np.zeros((n, n))
        H[np.ix_(R, R)] = np.linalg.inv(G[np.ix_(R, R)])
        w = refit(G, w0, R)
        F = np.flatnonzero(st == FREE)
        dj = w[F] ** 2 / np.diag(H)[F]
        for r in range(2, len(F)):
            cheapest = min(
                row_error(G, w0, refit(G, w0, R & ~np.isin(np.arange(n), A)))
                for A in itertools.combinations(F, r)
            )
            for certify in (False, True):
                lb = node_spectral_bound(0, 0, w[None], H[None], st[None], r, dj, certify, 0.0)
                assert base + lb <= cheapest * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("threads", [1, 2])
def test_time_limit_bound_is_below_the_optimum(rng, threads):
    """A search stopped early (one node per batch, a tiny time limit) reports a bound <= the optimum that an
    unlimited search proves, serial and threaded."""
    stopped = 0
    for trial in range(4):
        n = 40
        G, w0 = _ill_conditioned(rng, n) if trial % 2 else _problem(rng, n, relu=True)
        k = prune_count(n, 4)
        opt = prune_exact(G, w0, k)
        assert opt.status == "optimal"
        for stop in ("lagrange", "open"):
            res = prune_exact(
                G, w0, k, time_limit=1e-3, heuristic=False, batch_nodes=1, stop_bound=stop, threads=threads
            )
            assert res.bound <= opt.value * (1 + 1e-9) + 1e-12
            assert res.value >= opt.value * (1 - 1e-9)
            if res.status == "optimal":
                assert res.value == pytest.approx(opt.value, rel=1e-9)
            stopped += res.status == "time_limit"
    assert stopped >= 4  # the limit did bite


def test_threads_give_the_same_value_as_one(rng):
    """Two threads on one row reach the value that one thread proves (the supports may differ in ties)."""
    for trial in range(3):
        n = 26
        G, w0 = _problem(rng, n, relu=trial % 2 == 1)
        k = prune_count(n, 4)
        a = prune_exact(G, w0, k)
        b = prune_exact(G, w0, k, threads=2)
        assert a.status == b.status == "optimal"
        assert b.value == pytest.approx(a.value, rel=1e-9)
        assert np.count_nonzero(b.solution) <= k


def test_a_failing_worker_is_not_a_searched_subtree(rng, monkeypatch):
    """An exception in a worker thread reaches the caller instead of a result that claims optimality."""
    import threading

    import pvq.layerwise._prune_search as search

    real = search.load_node

    def failing(s, st, p, root=False):
        if threading.current_thread() is not threading.main_thread():  # only in the workers
            raise FloatingPointError("injected")
        return real(s, st, p, root=root)

    G, w0 = _problem(rng, 40, relu=True)
    monkeypatch.setattr(search, "load_node", failing)
    with pytest.raises(FloatingPointError):
        prune_exact(G, w0, prune_count(40, 4), threads=2, heuristic=False)
