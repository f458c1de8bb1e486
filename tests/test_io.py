from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from pvq._io import append_jsonl, atomic_write_text, from_jsonable, read_jsonl


def test_atomic_write_has_ordinary_permissions(tmp_path: Path) -> None:
    p = tmp_path / "a" / "x.json"
    atomic_write_text(p, "{}")
    mode = stat.S_IMODE(os.stat(p).st_mode)
    assert mode & stat.S_IRGRP and mode & stat.S_IROTH
    assert p.read_text() == "{}"
    assert [f.name for f in p.parent.iterdir()] == ["x.json"]  # no temp file left behind


def test_jsonl_survives_a_torn_last_line(tmp_path: Path) -> None:
    p = tmp_path / "rows.jsonl"
    append_jsonl(p, [{"a": 1}, {"a": float("inf")}])
    with open(p, "a") as f:
        f.write('{"a": 3')  # interrupted mid-write
    rows = [from_jsonable(r) for r in read_jsonl(p)]  # the file is strict JSON: inf is null + a note
    assert rows == [{"a": 1}, {"a": float("inf")}]
    assert json.loads(p.read_text().splitlines()[0]) == {"a": 1}


def test_append_after_a_torn_line_starts_a_new_line(tmp_path: Path) -> None:
    """Issue 18 D14: the record appended after an interrupted write used to be glued to the torn line."""
    p = tmp_path / "rows.jsonl"
    append_jsonl(p, [{"a": 1}])
    with open(p, "a") as f:
        f.write('{"a": 2, "b"')  # killed mid-write
    append_jsonl(p, [{"a": 3}])
    assert list(read_jsonl(p)) == [{"a": 1}, {"a": 3}]
    assert p.read_text() == '{"a": 1}\n{"a": 3}\n'


def test_append_completes_a_whole_record_missing_its_newline(tmp_path: Path) -> None:
    p = tmp_path / "rows.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}')  # killed between the record and its newline
    append_jsonl(p, [{"a": 3}])
    assert list(read_jsonl(p)) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_corrupt_line_in_the_middle_is_an_error_not_skipped(tmp_path: Path) -> None:
    """Issue 11 §4: read_jsonl skipped every bad line, not just a torn last one."""
    import pytest

    from pvq.errors import PvqInputError

    p = tmp_path / "rows.jsonl"
    p.write_text('{"a": 1}\n{"a": 2, oops\n{"a": 3}\n')
    with pytest.raises(PvqInputError, match=r"rows.jsonl: line 2 is not JSON"):
        list(read_jsonl(p))
    p.write_text('{"a": 1}\n{"a": 2, oops\n')  # a bad last line that ends in a newline was not torn
    with pytest.raises(PvqInputError, match="line 2"):
        list(read_jsonl(p))


def _strict_loads(text: str):
    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_to_jsonable_is_strict_json_and_round_trips(tmp_path: Path) -> None:
    import numpy as np

    from pvq._io import to_jsonable

    obj = {
        "snr_db": float("inf"),
        "low": -np.inf,
        "gap": np.float64("nan"),
        "ok": np.float32(1.5),
        "rows": [{"snr_db": float("inf")}, 2.0],
        "arr": np.array([1.0, np.inf]),
    }
    enc = to_jsonable(obj)
    text = json.dumps(enc)
    back = _strict_loads(text)  # raises on NaN/Infinity
    assert back["snr_db"] is None and back["snr_db_note"] == "inf"
    assert back["low"] is None and back["low_note"] == "-inf"
    assert back["gap"] is None and back["gap_note"] == "nan"
    assert back["arr"] == [1.0, None]  # in a list there is no key to carry the note
    dec = from_jsonable(back)
    assert dec["snr_db"] == float("inf") and dec["low"] == -float("inf") and np.isnan(dec["gap"])
    assert dec["rows"][0] == {"snr_db": float("inf")} and dec["ok"] == 1.5
    assert "snr_db_note" not in dec
    append_jsonl(tmp_path / "r.jsonl", [obj])
    _strict_loads((tmp_path / "r.jsonl").read_text())


def _rows_with_inf(t: int) -> list[dict]:
    return [{"task": t, "snr_db": float("inf"), "gap": float("nan"), "error": 0.0}]


def test_resumed_cache_reads_back_what_was_computed(tmp_path: Path) -> None:
    import math

    from pvq.parallel import run_cached

    cache = tmp_path / "cache.jsonl"
    first = run_cached(_rows_with_inf, [1, 2], ["a", "b"], cache=cache)
    _strict_loads(cache.read_text().splitlines()[0])  # strict JSON on disk
    again = run_cached(_rows_with_inf, [1, 2], ["a", "b"], cache=cache)  # every task from the cache
    assert again[0][0]["snr_db"] == math.inf and math.isnan(again[1][0]["gap"])
    assert [r[0]["task"] for r in again] == [r[0]["task"] for r in first]
