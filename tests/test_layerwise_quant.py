"""Exact quantization equals brute force over the integer box; heuristic <= exact <= SDP bound in SNR."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest

from pvq.layerwise import quant_exact, quant_gptq, quant_rtn, result_rows, row_error, solve_row

# (bits, n) with 2^(bits n) small enough to enumerate every point of the box
SIZES = {1: 10, 2: 7, 3: 5, 4: 4, 5: 3, 6: 2, 7: 2, 8: 2}


def _problem(rng, n, bits):
    X = rng.standard_normal((3 * n, n)) @ rng.standard_normal((n, n))
    w0 = rng.standard_normal(n)
    qmax = 2 ** (bits - 1) - 1 if bits > 1 else 1
    scale = float(np.abs(w0).max() / qmax * rng.uniform(0.5, 1.5))  # sometimes clipping, sometimes not
    return X.T @ X, w0, scale


def _brute(G, w0, scale, bits):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    Z = np.array(list(itertools.product(range(lo, hi + 1), repeat=w0.shape[0])), dtype=np.float64)
    D = Z * scale - w0
    return float(np.einsum("ij,jk,ik->i", D, G, D).min())


def _decaying(rng, n, decay, m=None):
    U = np.linalg.qr(rng.standard_normal((n, n)))[0]
    X = rng.standard_normal((m or 4 * n, n)) * np.exp(-decay * np.arange(n) / n) @ U.T
    return X.T @ X


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("order", ["hybrid", "box", "vblast", "natural"])
def test_exact_quant_equals_brute_force(rng, bits, order):
    for _ in range(5):
        n = int(rng.integers(2, SIZES[bits] + 1))
        G, w0, scale = _problem(rng, n, bits)
        res = quant_exact(G, w0, scale, bits, order=order)
        assert res.status == "optimal" and res.gap == 0.0
        z = res.solution / scale
        zi = np.round(z)
        assert np.allclose(z, zi) and zi.min() >= -(2 ** (bits - 1)) and zi.max() <= 2 ** (bits - 1) - 1
        assert res.value == pytest.approx(_brute(G, w0, scale, bits), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bits", range(2, 9))
def test_heuristic_le_exact_le_bound_every_row(rng, bits):
    for row in range(3):
        G, w0, scale = _problem(rng, 8, bits)
        res = solve_row(
            G, w0, "quant", bits, scale=scale, solvers=["rtn", "gptq", "sdp_round", "sdp", "sdp_box", "exact"]
        )
        rows = {r["solver"]: r for r in result_rows(res, G, w0, "quant", bits, row=row)}
        ex = rows["exact"]["snr_db"]
        for h in ("rtn", "gptq", "sdp_round"):
            assert rows[h]["snr_db"] <= ex + 1e-6
            assert rows[h]["kind"] == "heuristic"
        # the SDP solvers are accurate to about 1e-5 relative: allow 1e-3 dB
        assert rows["sdp"]["snr_db"] >= ex - 1e-3 and rows["sdp_box"]["snr_db"] >= ex - 1e-3
        assert rows["sdp_box"]["snr_db"] <= rows["sdp"]["snr_db"] + 1e-3  # the box only tightens it
        assert rows["exact"]["status"] == "optimal" and rows["sdp"]["kind"] == "bound"


def test_prune_rows_order_heuristic_le_exact(rng):
    X = rng.standard_normal((40, 12))
    G, w0 = X.T @ X, rng.standard_normal(12)
    res = solve_row(G, w0, "prune", 4)
    rows = {r["solver"]: r for r in result_rows(res, G, w0, "prune", 4)}
    for h in ("magnitude", "obs", "swap"):
        assert rows[h]["snr_db"] <= rows["exact"]["snr_db"] + 1e-9


def test_time_limit_returns_gap_not_hang(rng):
    n = 80
    G, w0 = _decaying(rng, n, 6.0), rng.standard_normal(n)
    scale = float(np.abs(w0).max() / 127 * 0.8)
    t0 = time.perf_counter()
    res = quant_exact(G, w0, scale, 8, time_limit=0.2)
    assert time.perf_counter() - t0 < 10.0
    assert res.value <= quant_gptq(G, w0, scale, 8).value * (1 + 1e-12)
    if res.status == "time_limit":
        assert 0.0 <= res.gap <= 1.0 and res.bound <= res.value and math.isfinite(res.bound)


def test_rtn_matches_formula(rng):
    G = np.eye(4)
    w0 = np.array([0.26, -1.0, 0.74, 3.0])
    res = quant_rtn(G, w0, 0.5, 3)
    assert np.allclose(res.solution, [0.5, -1.0, 0.5, 1.5])  # 3.0 clipped to 3 * 0.5
    assert res.value == pytest.approx(row_error(G, w0, res.solution))


def test_singular_gram_ridge_note(rng):
    X = rng.standard_normal((20, 6))
    X[:, 2] = 0.0  # a dead input: singular G, Cholesky fails
    G, w0 = X.T @ X, rng.standard_normal(6)
    res = quant_exact(G, w0, 0.3, 3)
    assert any("ridge" in n for n in res.notes)
    assert res.value == pytest.approx(_brute(G, w0, 0.3, 3), rel=1e-6)


def test_level_bound_does_not_change_the_optimum(rng):
    for bits in (2, 4, 8):
        for _ in range(4):
            n = 14
            G, w0 = _decaying(rng, n, 3.0), rng.laplace(size=n)
            scale = float(np.abs(w0).max() / (2 ** (bits - 1) - 1) * 0.7)
            a = quant_exact(G, w0, scale, bits, bound=True)
            b = quant_exact(G, w0, scale, bits, bound=False)
            assert a.status == b.status == "optimal"
            assert a.value == pytest.approx(b.value, rel=1e-10, abs=1e-14)
            assert a.nodes <= b.nodes


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6, 8])
def test_maxtrace_level_bound_equals_brute_force(rng, bits):
    """The max-trace diagonal level bound (swapped in mid-search) and the Jacobi one on random and
    ill-conditioned G, with scales that make the box bind: brute force over the box, and never more nodes
    than no bound."""
    for i in range(6):
        n = int(rng.integers(2, SIZES[bits] + 1))
        if i % 2:
            U = np.linalg.qr(rng.standard_normal((n, n)))[0]
            G = (U * np.geomspace(10.0 ** -rng.uniform(2, 5), 1.0, n)) @ U.T
            G = (G + G.T) / 2
        else:
            G = _problem(rng, n, bits)[0]
        w0 = rng.laplace(size=n)
        scale = float(np.abs(w0).max() / max(2 ** (bits - 1) - 1, 1) * rng.uniform(0.3, 1.2))
        ref = _brute(G, w0, scale, bits)
        plain = quant_exact(G, w0, scale, bits, bound=False)
        for diag in ("jacobi", "maxtrace"):
            # tiny batches: the max-trace tables replace the Jacobi ones after 30 nodes
            res = quant_exact(G, w0, scale, bits, diag_bound=diag, batch_nodes=3)
            assert res.status == "optimal"
            assert res.value == pytest.approx(ref, rel=1e-9, abs=1e-12)
            assert res.nodes <= plain.nodes


def test_maxtrace_tables_are_certified(rng):
    """``Q_k - diag(Dk[k])`` is positive semi-definite at every level, ``Dk >= 0``, its trace at least the
    Jacobi bound's (the larger of the two is kept), and clearly larger on correlated inputs."""
    from pvq.layerwise._quant_sphere import level_bounds

    for decay in (0.5, 4.0, 8.0):
        n = 40
        G = _decaying(rng, n, decay)
        R = np.linalg.cholesky(G).T
        c = rng.standard_normal(n)
        jac = level_bounds(R, c, True, False)[2]
        mt = level_bounds(R, c, True, True)[2]
        assert (mt >= 0).all()
        for k in range(1, n):
            Q = R[:k, :k].T @ R[:k, :k]
            assert np.linalg.eigvalsh(Q - np.diag(mt[k, :k]))[0] >= -1e-9 * np.abs(Q).max()
            assert mt[k, :k].sum() >= jac[k, :k].sum() * (1 - 1e-12)
        if decay == 4.0:  # cond(G) ~ 3e3, as on MobileNetV2 rows: it really is larger there
            assert mt[n - 1].sum() > 1.2 * jac[n - 1].sum()


def test_unknown_diag_bound_is_rejected():
    with pytest.raises(ValueError, match="diag_bound"):
        quant_exact(np.eye(3), np.ones(3), 0.1, 4, diag_bound="nope")


@pytest.mark.parametrize("bits", [2, 3])
def test_exact_quant_ill_conditioned_equals_brute_force(rng, bits):
    """Strongly correlated inputs (cond(G) ~ 1e4..1e6): the lower bounds on the undecided levels must
    never cut off the optimum."""
    n = SIZES[bits]
    for _ in range(4):
        U = np.linalg.qr(rng.standard_normal((n, n)))[0]
        G = (U * np.geomspace(10.0 ** -rng.uniform(4, 6), 1.0, n)) @ U.T
        G = (G + G.T) / 2
        w0 = rng.laplace(size=n) * 0.3
        scale = float(rng.uniform(0.05, 0.3))
        res = quant_exact(G, w0, scale, bits)
        assert res.status == "optimal"
        assert res.value == pytest.approx(_brute(G, w0, scale, bits), rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("bits", range(1, 6))
def test_exact_quant_with_oracle_everywhere_equals_brute_force(rng, bits, monkeypatch):
    """The box-relaxed oracle consulted at every level from 2 up: it must drop only nodes that hold
    nothing better and accept only in-box completions (brute force over the whole box)."""
    import pvq.layerwise._quant_sphere as qs

    monkeypatch.setattr(qs, "ORACLE_KMIN", 2)
    helped = 0
    for _ in range(6):
        n = int(rng.integers(3, SIZES[bits] + 1))
        G = _decaying(rng, n, 4.0)
        w0 = rng.laplace(size=n)
        scale = float(np.abs(w0).max() / max(2 ** (bits - 1) - 1, 1) * rng.uniform(0.4, 1.2))
        res = quant_exact(G, w0, scale, bits, relax=True)
        plain = quant_exact(G, w0, scale, bits, relax=False)
        assert res.status == plain.status == "optimal"
        assert res.value == pytest.approx(_brute(G, w0, scale, bits), rel=1e-9, abs=1e-12)
        assert res.value == pytest.approx(plain.value, rel=1e-9, abs=1e-12)
        assert plain.oracle == (0, 0, 0)
        helped += res.oracle[0]
    if bits >= 3:
        assert helped > 0  # the oracle really ran and dropped nodes


@pytest.mark.parametrize("oracle", ["box", "box_all"])
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_box_aware_oracle_equals_brute_force(rng, bits, oracle, monkeypatch):
    """The box-aware oracle (in-box points of the reduced basis only) consulted from level 2 up, on
    random and ill-conditioned ``G`` with scales that make the box bind: brute force over the box."""
    import pvq.layerwise._quant_sphere as qs

    monkeypatch.setattr(qs, "ORACLE_KMIN", 2)
    helped = 0
    for i in range(8):
        n = int(rng.integers(3, SIZES[bits] + 1))
        G = _decaying(rng, n, 4.0) if i % 2 else _problem(rng, n, bits)[0]
        w0 = rng.laplace(size=n)
        scale = float(np.abs(w0).max() / (2 ** (bits - 1) - 1) * rng.uniform(0.3, 1.0))  # clips often
        res = quant_exact(G, w0, scale, bits, relax=True, oracle=oracle)
        assert res.status == "optimal"
        assert res.value == pytest.approx(_brute(G, w0, scale, bits), rel=1e-9, abs=1e-12)
        helped += res.oracle[0]
    assert helped > 0  # the oracle really ran and closed nodes


def test_box_aware_oracle_at_n16_and_its_stopped_bound(rng, monkeypatch):
    """n = 16, ill-conditioned, 4 bits, binding box: every oracle mode gives the plain search's optimum,
    and a solve stopped early reports a bound below that optimum."""
    import pvq.layerwise._quant_sphere as qs

    monkeypatch.setattr(qs, "ORACLE_KMIN", 4)
    for _ in range(3):
        G = _decaying(rng, 16, 5.0)
        w0 = rng.laplace(size=16) * 0.05
        scale = float(np.abs(w0).max() / 7 * 0.5)
        ref = quant_exact(G, w0, scale, 4, relax=False)
        assert ref.status == "optimal"
        for oracle in ("relaxed", "box", "box_all"):
            res = quant_exact(G, w0, scale, 4, oracle=oracle, oracle_kmax=12)
            assert res.status == "optimal"
            assert res.value == pytest.approx(ref.value, rel=1e-9, abs=1e-14)
            stopped = quant_exact(G, w0, scale, 4, oracle=oracle, time_limit=1e-4, batch_nodes=50)
            assert stopped.bound <= ref.value * (1 + 1e-9)
            assert stopped.value >= ref.value * (1 - 1e-9)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_threads_equal_brute_force(rng, bits):
    """The search split over 2-3 threads (shared radius, one best point per worker): brute force."""
    for i in range(6):
        n = int(rng.integers(3, SIZES[bits] + 1))
        G = _decaying(rng, n, 4.0) if i % 2 else _problem(rng, n, bits)[0]
        w0 = rng.laplace(size=n)
        scale = float(np.abs(w0).max() / (2 ** (bits - 1) - 1) * rng.uniform(0.3, 1.2))
        ref = _brute(G, w0, scale, bits)
        for threads in (2, 3):
            res = quant_exact(G, w0, scale, bits, threads=threads)
            assert res.status == "optimal"
            assert res.value == pytest.approx(ref, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("per_thread", [1, 8, 10_000])
def test_threads_any_split_depth_equals_one_thread(rng, monkeypatch, per_thread):
    """However deep the tree is split (one level; a few; down to single levels left), the threaded
    search proves the one-thread optimum, on rows with clipped weights (centres outside the box) and
    without."""
    import pvq.layerwise._quant_split as split

    monkeypatch.setattr(split, "SUBTREES_PER_THREAD", per_thread)
    for i in range(4):
        n = 14
        G = _decaying(rng, n, 4.0)
        w0 = rng.laplace(size=n) * 0.05
        scale = float(np.abs(w0).max() / 7 * (0.5 if i % 2 else 1.1))
        one = quant_exact(G, w0, scale, 4, time_limit=None)
        two = quant_exact(G, w0, scale, 4, time_limit=None, threads=2)
        assert one.status == two.status == "optimal"
        assert two.value == pytest.approx(one.value, rel=1e-9, abs=1e-14)


def test_hybrid_order_puts_clipped_weights_first():
    """The hybrid order decides a weight the grid clips (centre far outside the box) first, and the
    other weights in V-BLAST's order; the Chang & Han order is the same on the clipped one."""
    from pvq.layerwise import box_order, vblast_order

    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 6)) * 0.1
    G = np.diag([3.0, 1.0, 5.0, 0.5, 2.0, 4.0]) + A @ A.T  # weakly coupled: the centres stay in the box
    c = np.array([0.2, -1.3, 2.4, 30.0, 0.6, -2.2])  # c[3] far above hi = 7, and the smallest R_jj
    hyb, _ = box_order(G, c, -8.0, 7.0, hybrid=True)
    chang_han, _ = box_order(G, c, -8.0, 7.0)
    assert hyb[-1] == chang_han[-1] == 3
    assert vblast_order(G)[-1] != 3
    rest = [0, 1, 2, 4, 5]
    assert list(hyb[:-1]) == [rest[j] for j in vblast_order(G[np.ix_(rest, rest)])]


def test_threads_same_optimum_and_valid_stopped_bound(rng):
    """n = 24, ill-conditioned, 4 bits: 2 threads find the 1-thread optimum; stopped early, the bound
    is below it and the value not below it."""
    G = _decaying(rng, 24, 5.0)
    w0 = rng.laplace(size=24) * 0.05
    scale = float(np.abs(w0).max() / 7 * 0.6)
    one = quant_exact(G, w0, scale, 4, time_limit=None)
    two = quant_exact(G, w0, scale, 4, time_limit=None, threads=2)
    assert one.status == two.status == "optimal"
    assert two.value == pytest.approx(one.value, rel=1e-9, abs=1e-14)
    stopped = quant_exact(G, w0, scale, 4, time_limit=1e-3, batch_nodes=50, threads=2)
    assert stopped.bound <= one.value * (1 + 1e-9)
    assert stopped.value >= one.value * (1 - 1e-9)


@pytest.mark.parametrize("bits", [2, 4])
def test_threads_stopped_bound_never_above_optimum(rng, bits):
    """Split searches stopped at several points (subtrees not started, under way, done): the bound they
    report (offsets raised by the level bound) stays <= the proved optimum on ill-conditioned rows."""
    for _ in range(6):
        G = _decaying(rng, 20, 6.0)
        w0 = rng.laplace(size=20) * 0.05
        scale = float(np.abs(w0).max() / (2 ** (bits - 1) - 1) * 0.6)
        opt = quant_exact(G, w0, scale, bits, time_limit=None)
        assert opt.status == "optimal"
        for limit in (1e-4, 2e-3, 2e-2):
            r = quant_exact(G, w0, scale, bits, time_limit=limit, batch_nodes=20, threads=2, relax=False)
            assert r.bound <= opt.value * (1 + 1e-9) + 1e-15
            assert r.value >= opt.value * (1 - 1e-9)


def test_unknown_order_is_rejected():
    with pytest.raises(ValueError, match="order must be one of"):
        quant_exact(np.eye(3), np.ones(3), 0.1, 4, order="chang-han")


@pytest.mark.parametrize("threads", [0, -2])
def test_threads_below_one_is_rejected(threads):
    with pytest.raises(ValueError, match="threads"):
        quant_exact(np.eye(3), np.ones(3), 0.1, 4, threads=threads)


def test_unknown_oracle_is_rejected():
    with pytest.raises(ValueError, match="oracle"):
        quant_exact(np.eye(3), np.ones(3), 0.1, 4, oracle="nope")


@pytest.mark.parametrize("bits", [3, 4, 6, 8])
def test_oracle_keeps_the_optimum_at_n16(rng, bits, monkeypatch):
    """n = 16, ill-conditioned: with and without the oracle (from level 4 up) the same optimum."""
    import pvq.layerwise._quant_sphere as qs

    monkeypatch.setattr(qs, "ORACLE_KMIN", 4)
    for _ in range(3):
        G = _decaying(rng, 16, 5.0)
        w0 = rng.laplace(size=16) * 0.05
        scale = float(np.abs(w0).max() / (2 ** (bits - 1) - 1) * 0.6)
        a = quant_exact(G, w0, scale, bits)
        b = quant_exact(G, w0, scale, bits, relax=False)
        assert a.status == b.status == "optimal"
        assert a.value == pytest.approx(b.value, rel=1e-9, abs=1e-14)


def test_oracle_time_limit_still_gives_a_valid_gap(rng):
    n = 60
    G = _decaying(rng, n, 6.0)
    w0 = rng.laplace(size=n) * 0.05
    scale = float(np.abs(w0).max() / 7 * 0.5)
    res = quant_exact(G, w0, scale, 4, time_limit=0.3)
    assert res.value <= quant_gptq(G, w0, scale, 4).value * (1 + 1e-12)
    assert res.bound <= res.value * (1 + 1e-12) and 0.0 <= res.gap <= 1.0


@pytest.mark.parametrize("bad", ["nan_w0", "inf_G", "shape", "scale"])
def test_exact_solvers_reject_bad_rows(bad):
    from pvq.layerwise import prune_exact

    G, w0, scale = np.eye(6), np.full(6, 0.3), 0.1
    if bad == "nan_w0":
        w0 = w0.copy()
        w0[2] = np.nan
    elif bad == "inf_G":
        G = G.copy()
        G[1, 1] = np.inf
    elif bad == "shape":
        G = np.eye(5)
    else:
        scale = 0.0
    with pytest.raises(ValueError, match="finite|shape|scale"):
        quant_exact(G, w0, scale, 4)
    with pytest.raises(ValueError, match="finite|shape|scale"):
        solve_row(G, w0, "quant", 4, scale=scale, solvers=["rtn", "exact"])
    if bad != "scale":
        with pytest.raises(ValueError, match="finite|shape"):
            prune_exact(G, w0, 3)
