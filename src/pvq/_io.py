"""Small I/O helpers used at the edges: atomic writes, JSON lines that survive interruption."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_text", "atomic_write_bytes", "append_jsonl", "read_jsonl", "to_jsonable", "from_jsonable"]


NONFINITE_NOTE = "_note"  # suffix of the key that says what a null stood for: "inf", "-inf" or "nan"
_TOKENS = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _token(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays to plain Python and make every value strict JSON.

    JSON has no infinity or NaN (``json.dumps`` would write ``Infinity``/``NaN``, which strict parsers
    reject), so a non-finite float becomes ``null``; in a dict, a sibling key ``<key>_note`` says what it
    stood for (``"inf"``, ``"-inf"`` or ``"nan"``; e.g. ``"snr_db": null, "snr_db_note": "inf"`` for a
    zero error), so :func:`from_jsonable` can restore it. In a list, a non-finite float is just ``null``.
    """
    import numpy as np

    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            v = to_jsonable(v)
            out[str(k)] = v
            raw = value[k]
            if v is None and isinstance(raw, (float, np.floating)) and not math.isfinite(raw):
                out[f"{k}{NONFINITE_NOTE}"] = _token(float(raw))
        return out
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def from_jsonable(value: Any) -> Any:
    """Undo :func:`to_jsonable`'s encoding of non-finite floats in dicts: ``{"k": null, "k_note": "inf"}``
    reads back as ``{"k": inf}`` (recursively); everything else is returned as it is."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k.endswith(NONFINITE_NOTE) and isinstance(v, str) and v in _TOKENS and k[: -len(NONFINITE_NOTE)] in value:
                continue
            note = value.get(f"{k}{NONFINITE_NOTE}")
            out[k] = _TOKENS[note] if v is None and isinstance(note, str) and note in _TOKENS else from_jsonable(v)
        return out
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _end_cleanly(path: Path) -> None:
    """Make ``path`` end with a newline before appending. Every pvq record is written as one line ending
    in "\n", so a last line without one was torn by an interrupted write: it is completed with "\n" if
    it still parses as JSON, else cut off (its record was never kept and is computed again)."""
    with open(path, "rb+") as f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return
        pos = end  # find the start of the last line, reading backwards in blocks
        while pos > 0:
            step = min(1 << 16, pos)
            f.seek(pos - step)
            block = f.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                pos = pos - step + nl + 1
                break
            pos -= step
        f.seek(pos)
        tail = f.read()
        try:
            json.loads(tail.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            f.truncate(pos)
        else:
            f.write(b"\n")
        f.flush()
        os.fsync(f.fileno())


def append_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> None:
    """Append rows as JSON lines, flushed and fsynced: an interrupted run loses at most a partial last
    line, which the next append cuts off (or completes) so that no record is glued to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        _end_cleanly(path)
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(to_jsonable(row)) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Read JSON lines (a missing file reads as empty), non-finite numbers restored by :func:`from_jsonable`.
    A torn last line (no final newline: the write was interrupted) is skipped; a bad line anywhere else means
    the file is corrupt: PvqInputError naming the file and line."""
    from pvq.errors import PvqInputError

    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            torn = not line.endswith("\n")  # only the last line can lack its newline
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if torn:
                    return
                raise PvqInputError(
                    f"{path}: line {number} is not JSON ({exc.msg}); the file is corrupt, delete it to start afresh"
                ) from None
            yield from_jsonable(record)  # non-finite numbers written as null + note read back as floats
