"""Helpers shared by the CLI commands: argument parsing, errors, output."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from typing import Any, NoReturn

from pvq._io import to_jsonable
from pvq.errors import PvqInputError

__all__ = ["parse_bits", "parse_count", "check_seed", "check_positive", "not_built", "print_json_rows", "fail"]

SEED_MAX = 2**32 - 1  # the widest range every RNG pvq seeds accepts (numpy, torch, Python's random)


def parse_bits(text: str, lo: int = 1, hi: int = 16, arg: str = "--bits") -> list[int]:
    """Parse ``--bits``: a range ``2-8`` or a list ``8,4,2`` (order kept, duplicates dropped)."""
    out: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                a_i, b_i = int(a), int(b)
                if a_i > b_i:
                    raise PvqInputError(f"{arg}: range '{part}' is empty (start > end)")
                for end in (a_i, b_i):  # before expanding: 2-9999999999 must not build a list of 10^10
                    if not lo <= end <= hi:
                        raise PvqInputError(f"{arg}: bit-widths must be in {lo}..{hi}, got {end}")
                out.extend(range(a_i, b_i + 1))
            else:
                out.append(int(part))
    except ValueError as exc:
        if isinstance(exc, PvqInputError):
            raise
        raise PvqInputError(f"{arg}: cannot parse '{text}' (use a range like 2-8 or a list like 8,4,2)") from None
    if not out:
        raise PvqInputError(f"{arg}: no bit-widths given")
    bad = [b for b in out if not lo <= b <= hi]
    if bad:
        raise PvqInputError(f"{arg}: bit-widths must be in {lo}..{hi}, got {bad[0]}")
    return list(dict.fromkeys(out))


def parse_count(text: str | float, arg: str, lo: int = 1) -> int:
    """A whole number >= ``lo``, also written like ``2e10``: PvqInputError otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise PvqInputError(f"{arg}: cannot parse '{text}' as a number") from None
    if not (math.isfinite(value) and value == int(value) and value >= lo):
        raise PvqInputError(f"{arg}: must be a whole number >= {lo}, got {text}")
    return int(value)


def check_seed(seed: int, arg: str = "--seed") -> int:
    """A seed in 0..2^32-1 (numpy refuses negative seeds, torch and Python's random larger ones)."""
    if not 0 <= seed <= SEED_MAX:
        raise PvqInputError(f"{arg}: must be in 0..{SEED_MAX}, got {seed}")
    return seed


def check_positive(value: float, arg: str, hi: float = math.inf, allow_zero: bool = False) -> float:
    """A finite number > 0 (>= 0 with ``allow_zero``) and <= ``hi``: PvqInputError naming ``arg`` otherwise."""
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0) and value <= hi
    if not ok:
        low = ">= 0" if allow_zero else "> 0"
        upper = f" and <= {hi:g}" if math.isfinite(hi) else ""
        raise PvqInputError(f"{arg}: must be a finite number {low}{upper}, got {value:g}")
    return value


def not_built(command: str, issue: str) -> NoReturn:
    """For commands not implemented yet: say so and exit 2."""
    print(f"pvq {command}: not built yet ({issue})", file=sys.stderr)
    sys.exit(2)


def fail(message: str) -> NoReturn:
    raise PvqInputError(message)


def print_json_rows(rows: Iterable[dict[str, Any]]) -> None:
    """``--json``: a JSON array of row objects on stdout and nothing else; strict JSON (a non-finite
    number is ``null`` with a ``<key>_note`` saying ``inf``/``-inf``/``nan``, see :func:`to_jsonable`)."""
    sys.stdout.write(json.dumps([to_jsonable(r) for r in rows], indent=1, allow_nan=False) + "\n")
    sys.stdout.flush()
