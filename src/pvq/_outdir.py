"""Output folders that never go stale: what made each resumable file, one writer at a time, never the source.

Every resumable artifact (a JSON-lines file of partial results, a training checkpoint) gets a *key*: a
JSON object of everything that changes its content: the fingerprint of the source it was computed from
(:func:`source_fingerprint`) and every option that changes the numbers. The key is stored beside the
artifact (``NAME.key.json``); a later run that would resume from it must bring the same key, else
:meth:`OutputFolder.claim` refuses with a :class:`~pvq.errors.PvqInputError` that says what differs and how
to start afresh. :func:`open_output` checks a folder before any work (not a file, not the source's own
folder, writable) and locks it (``fcntl.flock`` on ``.pvq.lock``) so that a second run cannot write into it
at the same time. The lock is re-entrant within a process: the CLI and the library code it calls may both
take it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pvq._io import atomic_write_text
from pvq.errors import PvqInputError

__all__ = [
    "source_fingerprint",
    "OutputFolder",
    "open_output",
    "check_not_source",
    "check_writable_file",
    "LOCK_NAME",
]

LOCK_NAME = ".pvq.lock"
_WHOLE = 64 << 20  # files up to 64 MiB are hashed whole
_SAMPLE = 1 << 20  # larger files: 16 samples of 1 MiB spread over the file (+ size and mtime)
_MAX_FILES = 20_000  # a folder source: at most this many files are fingerprinted (sorted by name)


def _file_digest(path: Path, size: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        if size <= _WHOLE:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            for i in range(16):
                f.seek((size - _SAMPLE) * i // 15)
                h.update(f.read(_SAMPLE))
    return h.hexdigest()


def _file_entry(path: Path, hash_content: bool) -> dict[str, Any]:
    st = path.stat()
    entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if hash_content:
        entry["blake2b"] = _file_digest(path, st.st_size)
    return entry


def source_fingerprint(source: str | os.PathLike[str], hash_content: bool = True) -> dict[str, Any]:
    """What a run reads from ``source``, to tell whether a later run reads the same thing.

    A file: its size, modification time (ns) and a BLAKE2b hash of its content (whole up to 64 MiB,
    else 16 evenly spread 1 MiB samples). A folder: the same for every file below it (relative paths,
    hidden files skipped, at most 20 000). A bundled model name: the name and its installed file or folder.
    Anything else (a name that is not a path): just the text. Never raises for a missing path.
    ``hash_content=False``: sizes and modification times only (for large folders of data files).
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    out: dict[str, Any] = {"source": text}
    bundled_first = False  # a bare bundled name is the bundled model even when ./NAME exists (as load_weights)
    if isinstance(source, str) and os.sep not in text and not text.startswith("."):
        try:
            from pvq.models import bundled_names

            bundled_first = text in bundled_names()
        except ImportError:
            pass
    if bundled_first or not path.exists():
        try:
            from pvq.models import bundled_names, bundled_path

            if text in bundled_names():
                bp = bundled_path(text, required=False)
                out["bundled"] = text
                if bp is None:
                    return out
                path = Path(bp)
            else:
                return out
        except ImportError:
            return out
    try:
        if path.is_dir():
            files = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )[:_MAX_FILES]
            out["files"] = {str(p.relative_to(path)): _file_entry(p, hash_content) for p in files}
        else:
            out["file"] = _file_entry(path, hash_content)
    except OSError as exc:  # unreadable: the loader will say so; fingerprint what we know
        out["unreadable"] = type(exc).__name__
    return out


def _resolved(p: str | os.PathLike[str]) -> Path:
    return Path(p).expanduser().resolve()


def check_not_source(out: Path, sources: Sequence[str | os.PathLike[str]], arg: str = "--out") -> None:
    """PvqInputError if writing into folder ``out`` could touch a source: ``out`` is a source folder or
    inside one, or holds a source (file or folder) anywhere below it (e.g. the folder of a source file)."""
    o = _resolved(out)
    for s in sources:
        sp = Path(os.fspath(s)).expanduser()
        if not sp.exists():
            continue
        sp = sp.resolve()
        if sp.is_dir() and (o == sp or sp in o.parents):
            where = "is the source folder" if o == sp else "is inside the source folder"
        elif o in sp.parents:
            where = "holds the source"
        else:
            continue
        raise PvqInputError(
            f"{arg}: {out} {where} {s} (pvq never writes into its input); choose another folder"
        )


def check_writable_file(
    path: str | os.PathLike[str], arg: str, sources: Sequence[str | os.PathLike[str]] = ()
) -> Path:
    """Check before any work that ``path`` can be written as a file: not a folder, not a source file nor
    inside a source folder, its folder exists (created if missing) and accepts a new file. Returns the
    path; PvqInputError naming ``arg`` if not."""
    p = Path(path)
    if p.is_dir():
        raise PvqInputError(f"{arg}: {p} is a folder; give a file name")
    target = _resolved(p)
    for s in sources:
        sp = Path(os.fspath(s)).expanduser()
        if sp.exists() and (target == sp.resolve() or sp.resolve() in target.parents):
            raise PvqInputError(
                f"{arg}: {p} would overwrite or sit inside the source {s}; choose another file"
            )
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
        os.close(fd)
        os.unlink(tmp)
        if p.exists() and not os.access(p, os.W_OK):
            raise PermissionError("file is read-only")
    except OSError as exc:
        raise PvqInputError(f"{arg}: cannot write {p} ({exc.strerror or exc})") from None
    return p


# ---- the lock: fcntl.flock on OUT/.pvq.lock, re-entrant within this process -----------------------------
_held: dict[Path, list[Any]] = {}  # resolved folder -> [open lock file, count]
_held_guard = threading.Lock()


def _acquire(folder: Path, arg: str) -> None:
    key = _resolved(folder)
    with _held_guard:
        if key in _held:
            _held[key][1] += 1
            return
        f = open(key / LOCK_NAME, "a+")  # noqa: SIM115 - held open for as long as the lock is held
        try:
            _lock_file(f)
        except BlockingIOError:
            f.close()
            raise PvqInputError(
                f"{arg}: {folder} is in use by another pvq run (lock {LOCK_NAME} held); "
                "wait for it to finish or use another folder"
            ) from None
        except OSError:  # a file system without locks: go on unlocked rather than refuse to run
            pass
        _held[key] = [f, 1]


def _release(folder: Path) -> None:
    key = _resolved(folder)
    with _held_guard:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _held[key]
            entry[0].close()  # closing the file releases the flock


def _lock_file(f: Any) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: msvcrt locks a byte range; same effect for our use
        import msvcrt

        f.seek(0)
        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            raise BlockingIOError from None
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _diff(old: Any, new: Mapping[str, Any]) -> list[str]:
    if not isinstance(old, dict):
        return ["(no record of what made it)"]
    return sorted(k for k in {*old, *new} if old.get(k) != new.get(k)) or ["(unknown)"]


@dataclass
class OutputFolder:
    """A checked, locked output folder (use :func:`open_output`). ``path``: the folder; ``arg``: the
    option that named it (for messages)."""

    path: Path
    arg: str = "--out"

    def claim(
        self,
        artifact: str,
        key: Mapping[str, Any],
        fresh: bool = False,
        recorded: Mapping[str, Any] | None = None,
    ) -> bool:
        """Bind the resumable file (or folder) ``path/artifact`` to ``key`` (JSON-able). Returns True when
        it exists and was made with the same key (resume from it), False when there is nothing to resume.
        Raises PvqInputError when it exists with another key, or with no key at all. ``fresh``: delete
        the file instead of resuming from it. ``recorded``: for an artifact an earlier pvq made without a
        key file, the key read from its own records (e.g. a config.json written beside it), if any; it
        is adopted when it equals ``key``."""
        target = self.path / artifact
        side = target.with_name(target.name + ".key.json")
        want = json.loads(json.dumps(key, sort_keys=True, default=str))
        if fresh:
            target.unlink(missing_ok=True)
        if target.exists():
            try:
                have = json.loads(side.read_text())
            except (OSError, json.JSONDecodeError):
                have = None
            if have is None and recorded is not None:
                have = json.loads(json.dumps(recorded, sort_keys=True, default=str))
                if have == want:
                    atomic_write_text(side, json.dumps(want, sort_keys=True))
            if have != want:
                why = (
                    f"was made from other inputs (differs in: {', '.join(_diff(have, want))})"
                    if isinstance(have, dict)
                    else "has no record of the inputs it was made from (an earlier pvq made it)"
                )
                raise PvqInputError(
                    f"{self.arg}: {target} {why}; resuming could mix two runs' results. Use another "
                    f"{self.arg}, or delete {target} (or all of {self.path}) to start afresh"
                )
            return True
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(side, json.dumps(want, sort_keys=True))
        return False


@contextmanager
def open_output(
    path: str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]] = (),
    arg: str = "--out",
) -> Iterator[OutputFolder]:
    """Check, create and lock an output folder for the duration of the ``with`` block.

    Refuses (PvqInputError naming ``arg``) a path that is a file, a folder that holds or is inside one of
    ``sources``, a folder that cannot be created or written, and a folder another pvq run holds.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise PvqInputError(f"{arg}: {p} exists and is not a folder")
    check_not_source(p, sources, arg)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".pvq-write-test.", dir=p)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise PvqInputError(f"{arg}: cannot write into {p} ({exc.strerror or exc})") from None
    _acquire(p, arg)
    try:
        yield OutputFolder(p, arg)
    finally:
        _release(p)
