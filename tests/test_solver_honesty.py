"""Solvers say what they did: time limits cover the whole solve, SDPs too large for the machine or the
limit are skipped with a reason, an SDP not solved to tolerance claims no bound, failures are named,
and every JSON output is strict (issue 11 §4, issue 18 D2/D7/D10)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pvq._io import to_jsonable
from pvq._progress import enable_progress
from pvq.cli import main
from pvq.layerwise import prune_exact, result_rows, sdp_cost, solve_row
from pvq.layerwise._prune_swap import improve_support, prune_swap
from pvq.layerwise._quant_sdp import SdpFailed, sdp_bound_result, solve_sdp

SLACK_S = 2.0  # for calls whose work is small (no O(n^3) set-up at large n)


def strict_loads(text: str):
    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def problem(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A correlated layer problem (decaying input spectrum) with Laplace weights: ``G`` (n, n), ``w0`` (n,)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2 * n, n)) * np.exp(-3.0 * np.arange(n) / n)
    return X.T @ X, rng.laplace(size=n)


@pytest.fixture(scope="module", autouse=True)
def compiled() -> None:
    """Compile the kernels once, outside every timed call."""
    G, w = problem(8)
    prune_exact(G, w, 2, time_limit=1.0)


@pytest.fixture
def run(capsys):
    def _run(*args):
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            enable_progress(False)
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return _run


# --------------------------------------------------------------------------- D7: time limits


def setup_slack(G: np.ndarray) -> float:
    """Seconds allowed past a time limit: the solvers' few O(n^3) steps (inverses, eigenvalues, OBS) cannot
    be interrupted. Measured here as 10x one eigenvalue decomposition plus one inverse of ``G`` (about
    0.1 s at n = 400 on an idle 2-core machine), so that a loaded machine does not fail the test. The tests compare the smaller of wall and process
    CPU time: on a machine oversubscribed several-fold (5.0 s wall against a 4.1 s allowance at load 12 on 2 cores)
    the uninterruptible steps stretch in wall time but not in CPU time, while the bug these tests guard against
    (work that ignores the limit: 13.8 s for a 2 s limit) shows in both."""
    t0 = time.perf_counter()
    np.linalg.eigvalsh(G)
    np.linalg.inv(G)
    return 0.5 + 10.0 * (time.perf_counter() - t0)


def test_exact_pruning_time_limit_covers_the_swap_warm_start() -> None:
    # issue 18 D7: n = 400 with a 2 s limit took 13.8 s, the unlimited swap warm start alone
    G, w = problem(400)
    limit = 1.0
    slack = setup_slack(G)
    t0, c0 = time.perf_counter(), time.process_time()
    r = prune_exact(G, w, 100, time_limit=limit)
    wall = min(time.perf_counter() - t0, time.process_time() - c0)  # see setup_slack
    assert "swap search stopped: time limit" in r.notes  # the warm start alone needed more than the limit
    assert r.status == "time_limit" and r.gap >= 0 and np.count_nonzero(r.solution) <= 100
    assert wall <= limit + slack, (wall, slack)


def test_solve_row_time_limit_covers_every_solver_of_the_row() -> None:
    G, w = problem(300, seed=1)
    limit = 0.5
    slack = setup_slack(G)
    t0, c0 = time.perf_counter(), time.process_time()
    res = solve_row(G, w, "prune", 4, time_limit=limit)
    wall = min(time.perf_counter() - t0, time.process_time() - c0)  # see setup_slack
    assert wall <= limit + slack, (wall, slack)
    assert res["exact"].status == "time_limit"
    assert res["exact"].value <= res["swap"].value + 1e-9 * res["swap"].value  # warm start kept


def test_swap_search_names_why_it_stopped_and_raises_what_it_does_not_expect() -> None:
    # two identical inputs: keeping both makes G_SS exactly singular
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 6))
    X[:, 1] = X[:, 0]
    G = X.T @ X
    w = np.array([3.0, 2.9, 0.1, 0.2, 0.05, 0.3])
    keep, why = improve_support(G, w, np.array([1, 1, 0, 0, 0, 1], dtype=bool))
    assert why == "singular G_SS" and keep.sum() == 3
    assert "swap search stopped: singular G_SS" in prune_swap(G, w, 3).notes
    with pytest.raises(ValueError):  # a caller's bug is not swallowed (it used to be: `except Exception`)
        improve_support(G, w[:5], np.ones(6, dtype=bool))


# --------------------------------------------------------------------------- D2: SDP size guard


def test_sdp_estimate_covers_the_allocation_that_aborted_n_400() -> None:
    # issue 18 D2: "memory allocation of 51972169608 bytes failed" at n = 400; that is one buffer of the peak
    assert sdp_cost(400).bytes >= 51_972_169_608
    assert sdp_cost(100).seconds > 60.0  # n = 100 took 109 s (sdp + sdp_box) against a 60 s limit
    assert sdp_cost(20).seconds < 1.0 and sdp_cost(20).bytes < 1e8
    assert sdp_cost(50, box=True).seconds > sdp_cost(50).seconds


def test_sdp_over_the_memory_cap_is_skipped_with_a_reason() -> None:
    G, w = problem(30)
    t0 = time.perf_counter()
    res = solve_row(G, w, "quant", 4, scale=0.5, time_limit=60.0, sdp_max_bytes=1e3)
    assert time.perf_counter() - t0 < 30.0  # the exact search ran, no SDP did
    for name in ("sdp", "sdp_round", "sdp_box"):
        r = res[name]
        assert r.status == "skipped" and math.isnan(r.value) and math.isnan(r.bound)
        assert "GB (estimate)" in r.notes[0] and "allowed" in r.notes[0]
    assert res["exact"].status == "optimal"
    rows = result_rows(res, G, w, "quant", 4)
    text = json.dumps(to_jsonable(rows))
    back = {r["solver"]: r for r in strict_loads(text)}
    assert back["sdp"]["snr_db"] is None and back["sdp"]["status"] == "skipped"
    assert back["exact"]["snr_db"] is not None


def test_sdp_over_the_time_limit_is_skipped_before_it_starts() -> None:
    G, w = problem(60)
    assert sdp_cost(60).seconds > 2.0
    t0 = time.perf_counter()
    res = solve_row(G, w, "quant", 4, scale=0.5, solvers=["gptq", "sdp", "sdp_round"], time_limit=1.0)
    assert time.perf_counter() - t0 < 1.0 + SLACK_S
    assert res["sdp"].status == "skipped" and "time limit" in res["sdp"].notes[0]
    assert res["gptq"].status == "heuristic" and math.isfinite(res["gptq"].value)


# --------------------------------------------------------------------------- SDP honesty


def test_an_inaccurate_sdp_is_not_reported_as_a_bound() -> None:
    G, w = problem(12)
    # SCS stopped after a few iterations: cvxpy says optimal_inaccurate
    s = solve_sdp(G, w, 0.5, 4, solvers=("SCS",), solver_options={"SCS": {"max_iters": 5}})
    assert s.status == "inaccurate" and any("optimal_inaccurate" in n for n in s.notes)
    r = sdp_bound_result(s)
    assert r.status == "inaccurate" and math.isnan(r.value) and math.isnan(r.bound)
    assert "not a certified bound" in r.notes[0]
    exact = solve_sdp(G, w, 0.5, 4)
    assert exact.status == "optimal" and sdp_bound_result(exact).bound == exact.bound


def test_sdp_failure_names_every_solver() -> None:
    G, w = problem(6)
    with pytest.raises(SdpFailed) as err:
        solve_sdp(G, w, 0.5, 4, solvers=("NO_SUCH_SOLVER", "OSQP"))  # OSQP cannot take a PSD cone
    msg = str(err.value)
    assert "NO_SUCH_SOLVER" in msg and "OSQP" in msg, msg


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def npz60(tmp_path: Path) -> Path:
    G, w = problem(60)
    p = tmp_path / "p60.npz"
    np.savez(p, G=G, w=w[None, :], scale=np.float64(0.5))
    return p


def test_cli_refuses_an_sdp_asked_for_by_name_that_cannot_fit(run, npz60: Path) -> None:
    t0 = time.perf_counter()
    r = run("solve", npz60, "--method", "quant", "--bits", "4", "--solvers", "sdp", "--time-limit", "1")
    assert r.returncode == 2
    assert "sdp" in r.stderr and "estimate" in r.stderr and "Traceback" not in r.stderr
    assert time.perf_counter() - t0 < SLACK_S + 1.0


def test_cli_all_solvers_skips_the_sdp_and_prints_strict_json(run, npz60: Path) -> None:
    r = run("solve", npz60, "--method", "quant", "--bits", "4", "--time-limit", "1", "--json")
    assert r.returncode == 0, r.stderr
    rows = {x["solver"]: x for x in strict_loads(r.stdout)}
    assert rows["sdp"]["status"] == "skipped" and rows["sdp"]["snr_db"] is None
    assert "estimate" in rows["sdp"]["notes"][0]
    assert rows["rtn"]["snr_db"] is not None
    assert "skipping sdp" in r.stderr


def test_cli_json_is_strict_for_lossless_and_all_zero_tensors(run, tmp_path: Path) -> None:
    import torch

    f = tmp_path / "t.pt"
    torch.save({"a.weight": torch.randn(8, 8), "b.weight": torch.zeros(4, 4), "c.weight": torch.ones(1, 1)}, f)
    r = run("tensors", f, "--bits", "16", "--json")
    assert r.returncode == 0, r.stderr
    rows = strict_loads(r.stdout)
    a = next(x for x in rows if x["name"] == "a.weight")
    assert a["prune_snr_db"] is None and a["prune_snr_db_note"] == "inf"  # nothing pruned at 16 bits
    # a zero-error row of `pvq solve`: one weight, pruning at 16 bits keeps it
    p = tmp_path / "one.npz"
    np.savez(p, G=np.eye(1), w=np.ones((1, 1)))
    r = run("solve", p, "--method", "prune", "--bits", "16", "--json")
    assert r.returncode == 0, r.stderr
    rows = strict_loads(r.stdout)
    assert all(x["snr_db"] is None and x["snr_db_note"] == "inf" for x in rows)
