"""`pvq theory`: JSON contract, numbers, bad arguments -> exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pvq.cli import main


def run_pvq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pvq", *args], capture_output=True, text=True, timeout=120)


def test_theory_gaussian_json() -> None:
    out = run_pvq("theory", "--dist", "gaussian", "--bits", "2-8", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["bits"] for r in rows] == list(range(2, 9))
    for r in rows:
        assert {"bits", "sparsity", "quant_snr_db", "prune_snr_db"} <= set(r)
        assert r["sparsity"] == pytest.approx(1 - r["bits"] / 16)
    r4 = rows[2]
    assert r4["quant_snr_db"] == pytest.approx(19.26, abs=0.02)
    assert r4["prune_snr_db"] == pytest.approx(5.58, abs=0.02)


def test_theory_student_t_kurtosis_and_formats() -> None:
    out = run_pvq(
        "theory", "--dist", "student-t", "--nu", "2", "--kurtosis", "160", "--bits", "2,3,8", "--json"
    )
    assert out.returncode == 0, out.stderr
    rows = {r["bits"]: r for r in json.loads(out.stdout)}
    assert rows[2]["winner"] == "prune" and rows[3]["winner"] == "prune" and rows[8]["winner"] == "quant"
    assert rows[2]["params"]["R"] == pytest.approx(100.2, abs=0.5)
    out = run_pvq("theory", "--format", "nf4", "--bits", "4", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)[0]["format"] == "nf4"
    out = run_pvq("theory", "--format", "fp", "--bits", "8")
    assert out.returncode == 0 and "fp8" in out.stdout and "quant" in out.stdout


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--dist", "cauchy"], "--dist"),
        (["--dist", "gaussian", "--range", "3"], "--range"),
        (["--dist", "laplace", "--nu", "3"], "--nu"),
        (["--dist", "student-t", "--range", "3", "--kurtosis", "5"], "--kurtosis"),
        (["--dist", "student-t", "--kurtosis", "1.2"], "--kurtosis"),
        (["--dist", "student-t", "--range", "-3"], "--range"),
        (["--dist", "student-t", "--nu", "0"], "--nu"),
        (["--bits", "1-8"], "--bits"),
        (["--bits", "x"], "--bits"),
        (["--format", "posit"], "--format"),
        (["--format", "nf4", "--bits", "3"], "--format"),
        (["--format", "fp8_e5m2", "--bits", "4"], "--format"),
    ],
)
def test_theory_bad_args_exit_2(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["theory", *args])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("pvq: error:") and needle in captured.err, captured.err
    assert captured.out == ""


def test_theory_bad_args_exit_2_end_to_end() -> None:
    out = run_pvq("theory", "--dist", "student-t", "--kurtosis", "1.2")
    assert out.returncode == 2 and "--kurtosis" in out.stderr and out.stdout == ""


def test_theory_named_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["theory", "--format", "fp8_e5m2", "--bits", "8", "--json"])
    assert exc.value.code == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["format"] == "fp8_e5m2" and 20 < row["quant_snr_db"] < 30


def test_theory_in_process_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["theory", "--dist", "laplace", "--bits", "4", "--json"])
    assert exc.value.code == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["dist"] == "laplace" and rows[0]["quant_snr_db"] > rows[0]["prune_snr_db"]
