"""Hostile or unusual command-line arguments (issue 18: D8, D12, cosmetics): every one is refused before any
work with one ``pvq: error:`` line naming the argument, exit 2, no traceback and no usage box."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from _hostile_files import good_problem, make_npz, make_onnx
from pvq.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], words: str) -> str:
    code, out, err = _run(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("pvq: error: "), err
    assert "Traceback" not in err and "Usage" not in err
    assert words in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def problem(tmp_path: Path) -> Path:
    return make_npz(tmp_path / "p.npz", **good_problem())


@pytest.fixture()
def onnx_file(tmp_path: Path) -> Path:
    return make_onnx(tmp_path / "m.onnx", [3, 4])


BITS_HUGE = "2-9999999999"  # expanding this range used to build a list of 10^10 ints


@pytest.mark.parametrize(
    "argv,words",
    [
        (["solve", "{problem}", "--method", "quant", "--bits", "4", "--seed", "-1"], "--seed"),
        (["solve", "{problem}", "--method", "prune", "--bits", "4", "--time-limit", "nan"], "--time-limit"),
        (["layers", "mobilenet_v2", "--layer", "no.such.layer", "--seed", "-1"], "--seed"),
        (["compare", "{onnx}", "--layers", "0", "--seed", "-1", "--out", "{tmp}/o"], "--seed"),
        (["reproduce", "fig1", "--seed", "-1", "--out", "{tmp}/o"], "--seed"),
        (
            ["finetune", "--method", "quant", "--bits", "4", "--seed", str(10**23), "--out", "{tmp}/o"],
            "--seed",
        ),
        (
            ["finetune", "--method", "quant", "--bits", "4", "--threads", "-4", "--out", "{tmp}/o"],
            "--threads",
        ),
        (["theory", "--dist", "student-t", "--nu", "1e308"], "--nu"),
        (["theory", "--dist", "student-t", "--range", "1e300"], "--range"),
        (["theory", "--bits", BITS_HUGE], "9999999999"),
        (["tensors", "{onnx}", "--bits", BITS_HUGE], "9999999999"),
        (["layers", "mobilenet_v2", "--layer", "x", "--bits", BITS_HUGE], "9999999999"),
        (["layers", "mobilenet_v2", "--layer", "x", "--ray-address", "no-port-here"], "--ray-address"),
        # click's own type errors: one line naming the option, not typer's 6-line usage box
        (["solve", "{problem}", "--method", "quant", "--bits", "four"], "--bits"),
        (["finetune", "--method", "quant", "--bits", "4", "--seed", "1e23"], "--seed"),
        (["tensors", "{onnx}", "--no-such-option"], "--no-such-option"),
        (["solve", "{problem}", "--bits", "4"], "--method"),
    ],
)
def test_bad_argument_one_line_exit_2(
    argv: list[str],
    words: str,
    tmp_path: Path,
    problem: Path,
    onnx_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [a.format(problem=problem, onnx=onnx_file, tmp=tmp_path) for a in argv]
    t0 = time.perf_counter()
    _refused(args, capsys, words)
    assert time.perf_counter() - t0 < 30  # refused before any work


def test_budget_checked_before_the_sweep(
    tmp_path: Path, onnx_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """D12: a bad --budget used to fail only after the whole tensor sweep (72 s on SmolLM2), having written it."""
    out = tmp_path / "o"
    for budget in ("abc", "0", "17", "-1MB"):
        _refused(
            ["compare", str(onnx_file), "--budget", budget, "--layers", "0", "--out", str(out)],
            capsys,
            "--budget",
        )
        assert not out.exists()
    code, _, err = _run(
        ["compare", str(onnx_file), "--budget", "25%", "--layers", "0", "--out", str(out), "--quiet"], capsys
    )
    assert code == 0, err


def test_unreachable_ray_address_fails_fast(capsys: pytest.CaptureFixture[str]) -> None:
    """D8: an unreachable --ray-address used to fail after 25 s with a traceback (after capturing the layer)."""
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a port nothing listens on: bind, then close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    argv = ["layers", "mobilenet_v2", "--layer", "features.0.0", "--max-chunks", "1", "--max-rows", "1",
            "--ray-address", f"127.0.0.1:{port}"]  # fmt: skip
    _refused(argv, capsys, "cannot reach")
    assert time.perf_counter() - t0 < 10


def test_library_warnings_do_not_precede_the_error(tmp_path: Path) -> None:
    """Cosmetic: torch's pickle-protocol UserWarning used to print (2 lines) before the one error line.

    A subprocess: in-process, pytest would capture the warning itself."""
    p = tmp_path / "bn.pt"
    torch.save(nn.BatchNorm1d(4).state_dict(), p, pickle_protocol=4)  # torch warns, then refuses protocol 4
    res = subprocess.run(
        [sys.executable, "-m", "pvq", "tensors", str(p), "--bits", "4"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("pvq: error: ") and "bn.pt" in lines[0], res.stderr


def test_warnings_after_success_are_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    from pvq import cli

    def noisy() -> None:
        warnings.warn("first\nsecond line", UserWarning, stacklevel=1)
        warnings.warn("first\nsecond line", UserWarning, stacklevel=1)

    orig = cli.app.registered_commands[:]
    try:
        cli.app.command("noisy-test")(noisy)
        code, _, err = _run(["noisy-test"], capsys)
    finally:
        cli.app.registered_commands[:] = orig
    assert code == 0
    assert err.strip() == "pvq: warning: first second line"


def test_negative_definite_g_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Cosmetic: a negative-definite G was reported as 'G is zero'."""
    prob = good_problem()
    p = make_npz(tmp_path / "neg.npz", G=-prob["G"], w=prob["w"])
    line = _refused(
        ["solve", str(p), "--method", "prune", "--bits", "4"], capsys, "not positive semi-definite"
    )
    assert "zero" not in line
    z = make_npz(tmp_path / "zero.npz", G=np.zeros((6, 6)), w=prob["w"])
    _refused(["solve", str(z), "--method", "prune", "--bits", "4"], capsys, "G is zero")


def test_ctrl_c_says_partial_results_were_kept(capsys: pytest.CaptureFixture[str]) -> None:
    """typer turns Ctrl-C into a silent exit 130; the CLI edge now says what happened (one line)."""
    from pvq import cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    orig = cli.app.registered_commands[:]
    try:
        cli.app.command("interrupted-test")(interrupted)
        code, _, err = _run(["interrupted-test"], capsys)
    finally:
        cli.app.registered_commands[:] = orig
    assert code == 130
    assert err.strip() == "pvq: interrupted; partial results were kept where the command writes them"
