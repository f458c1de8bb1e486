"""Helpers shared by the CLI commands: argument parsing, errors, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any, NoReturn

from pvq._io import to_jsonable
from pvq.errors import PvqInputError

__all__ = ["parse_bits", "not_built", "print_json_rows", "fail"]


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
