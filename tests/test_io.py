from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from pvq._io import append_jsonl, atomic_write_text, read_jsonl


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
    rows = list(read_jsonl(p))
    assert rows == [{"a": 1}, {"a": float("inf")}]
    assert json.loads(p.read_text().splitlines()[0]) == {"a": 1}
