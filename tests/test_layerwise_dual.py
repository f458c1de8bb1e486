"""The Lagrangian bounds of the exact solvers are valid: never above the brute-force optimum (at the root
and with coordinates fixed), the solvers that use them still equal brute force, and a gap reported at a
time limit is never below the true gap."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pvq.layerwise import prune_count, refit, row_error
from pvq.layerwise._prune_bnb import prune_exact
from pvq.layerwise._prune_dual import dual_node_bound, prune_dual
from pvq.layerwise._quant_dual import quant_dual
from pvq.layerwise._quant_sphere import quant_exact


def _gram(rng, n, relu=False):
    X = rng.standard_normal((3 * n, n)) @ rng.standard_normal((n, n))
    if relu:
        X = np.maximum(X + 0.3, 0.0)
    return X.T @ X


def _support_errors(G, w0, k):
    """Error of the least-squares refit on every support of size k: {support tuple: error}."""
    n = w0.shape[0]
    out = {}
    for S in itertools.combinations(range(n), k):
        keep = np.zeros(n, dtype=bool)
        keep[list(S)] = True
        out[S] = row_error(G, w0, refit(G, w0, keep))
    return out


@pytest.mark.parametrize("relu", [False, True])
def test_prune_dual_never_above_the_optimum(rng, relu):
    for _ in range(4):
        n = int(rng.integers(6, 11))
        G, w0 = _gram(rng, n, relu), rng.standard_normal(n)
        for k in range(1, n):
            errs = _support_errors(G, w0, k)
            opt = min(errs.values())
            dual = prune_dual(G, w0, k, opt, iters=300)
            assert dual is not None and dual.root <= opt * (1 + 1e-12)
            assert dual.root > 0.0  # the ascent found a positive bound (it starts at >= 0)
            # a node: random kept / pruned sets; the bound is below every support that respects them
            for _ in range(3):
                state = rng.integers(0, 3, size=n)  # 0 free, 1 pruned, 2 kept
                kept, free = state == 2, state == 0
                if kept.sum() > k or kept.sum() + free.sum() < k:
                    continue
                best = min(
                    e
                    for S, e in errs.items()
                    if set(np.flatnonzero(kept)) <= set(S) and not (state[list(S)] == 1).any()
                )
                assert dual_node_bound(dual, kept, free, k - int(kept.sum())) <= best * (1 + 1e-12)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_prune_exact_with_lagrange_bound_equals_brute_force(rng, bits):
    for trial in range(4):
        n = int(rng.integers(8, 14))
        G, w0 = _gram(rng, n, trial % 2 == 1), rng.standard_normal(n)
        k = prune_count(n, bits)
        if k == 0:
            continue
        opt = min(_support_errors(G, w0, k).values())
        for bound in ("lagrange", "eigen"):  # the Lagrangian node bound on, and off
            res = prune_exact(G, w0, k, bound=bound, arm_after=0.0, heuristic=trial % 2 == 0, batch_nodes=2)
            assert res.status == "optimal"
            assert res.value == pytest.approx(opt, rel=1e-8, abs=1e-12)


def test_prune_gap_at_time_limit_is_at_least_the_true_gap(rng):
    n = 28
    G, w0 = _gram(rng, n, relu=True), rng.standard_normal(n)
    k = prune_count(n, 4)
    opt = prune_exact(G, w0, k, time_limit=None).value
    stopped = 0
    for batch in (1, 5, 50):
        res = prune_exact(G, w0, k, time_limit=0.0, arm_after=0.0, batch_nodes=batch, heuristic=False)
        if res.status != "time_limit":
            continue
        stopped += 1
        assert res.bound <= opt * (1 + 1e-9)
        assert res.gap >= (res.value - opt) / res.value - 1e-9
        assert any("Lagrangian" in x for x in res.notes)
    assert stopped


def _brute_z(G, c, lo, hi, fixed=None):
    n = c.shape[0]
    Z = np.array(list(itertools.product(np.arange(lo, hi + 1), repeat=n)), dtype=np.float64)
    if fixed:
        for i, v in fixed.items():
            Z = Z[Z[:, i] == v]
    D = Z - c
    return float(np.einsum("ij,jk,ik->i", D, G, D).min())


@pytest.mark.parametrize("bits", [2, 3])
def test_quant_dual_never_above_the_optimum(rng, bits):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    for _ in range(4):
        n = 5
        G = _gram(rng, n)
        c = rng.standard_normal(n) * hi
        opt = _brute_z(G, c, lo, hi)
        dual = quant_dual(G, c, lo, hi, opt, iters=300)
        assert dual is not None and dual.root <= opt * (1 + 1e-12)
        # with the last two coordinates fixed (as the search fixes them): below every completion
        for v3, v4 in ((lo, hi), (0, 0)):
            sub = _brute_z(G, c, lo, hi, {3: v3, 4: v4})
            bound = dual.const + dual.fmin[:3].sum() + dual.f(3, v3) + dual.f(4, v4)
            assert bound <= sub * (1 + 1e-12)


def test_quant_gap_at_time_limit_is_at_least_the_true_gap(rng):
    n = 24
    X = rng.standard_normal((3 * n, n)) * np.exp(-4.0 * np.arange(n) / n)
    G = X.T @ X
    w0 = rng.laplace(size=n) * 0.05
    scale = float(np.abs(w0).max() / 7)
    opt = quant_exact(G, w0, scale, 4, time_limit=None).value
    stopped = 0
    for batch in (1, 20, 400):
        res = quant_exact(G, w0, scale, 4, time_limit=1e-9, batch_nodes=batch, relax=False)
        assert any("Lagrangian" in x for x in res.notes) or res.status == "optimal"
        if res.status != "time_limit":
            continue
        stopped += 1
        assert res.bound <= opt * (1 + 1e-9)
        assert res.gap >= (res.value - opt) / res.value - 1e-9
    assert stopped
