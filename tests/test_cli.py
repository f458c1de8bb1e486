from __future__ import annotations

import subprocess
import sys

import pytest

from pvq.cli._common import parse_bits
from pvq.errors import PvqInputError


def run_pvq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pvq", *args], capture_output=True, text=True, timeout=600)


def test_help_lists_every_command() -> None:
    out = run_pvq("--help")
    assert out.returncode == 0
    for cmd in ("compare", "theory", "tensors", "layers", "solve", "finetune", "reproduce", "models"):
        assert cmd in out.stdout


@pytest.mark.parametrize(
    "text,expected",
    [("2-8", [2, 3, 4, 5, 6, 7, 8]), ("8,4,2", [8, 4, 2]), ("4", [4]), ("2-3,8", [2, 3, 8]), ("4,4", [4])],
)
def test_parse_bits(text: str, expected: list[int]) -> None:
    assert parse_bits(text) == expected


@pytest.mark.parametrize("text", ["0", "8-2", "abc", "", "17", "-1"])
def test_parse_bits_rejects(text: str) -> None:
    with pytest.raises(PvqInputError, match="--bits"):
        parse_bits(text)
