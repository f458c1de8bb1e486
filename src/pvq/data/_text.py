"""Text for perplexity: Python's own pydoc topics, or a user's text file."""

from __future__ import annotations

import os
from pathlib import Path

from pvq.errors import PvqInputError

__all__ = ["perplexity_text", "split_text", "text_file"]


def perplexity_text() -> str:
    """The bundled text for perplexity: Python's ``pydoc_data/topics.py`` help topics, in sorted key order.

    It ships with every CPython (about 0.46 M characters of English technical prose), so it is always
    available offline and identical across machines of the same Python version.
    """
    try:
        from pydoc_data.topics import topics
    except ImportError:  # pragma: no cover - stripped Python builds
        raise PvqInputError("pydoc_data.topics: not available in this Python (stripped install?)") from None
    return "\n\n".join(topics[k].strip() for k in sorted(topics))


def text_file(path: str | os.PathLike[str]) -> str:
    """Read a UTF-8 text file (for perplexity); empty or non-text files are rejected."""
    p = Path(path)
    if not p.exists():
        raise PvqInputError(f"{p}: file not found")
    if p.is_dir():
        raise PvqInputError(f"{p}: is a folder, expected a text file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PvqInputError(f"{p}: not UTF-8 text") from None
    except OSError as exc:
        raise PvqInputError(f"{p}: cannot read ({exc.strerror})") from None
    if not text.strip():
        raise PvqInputError(f"{p}: text file is empty")
    return text


def split_text(text: str, held_out_chars: int) -> tuple[str, str]:
    """(evaluation, calibration): the first ``held_out_chars`` characters and the rest, cut at the next
    paragraph break so no sentence is split. Calibration drawn from the second part never sees the first."""
    if not 0 < held_out_chars < len(text):
        raise PvqInputError(f"held_out_chars: must be in 1..{len(text) - 1}, got {held_out_chars}")
    cut = text.find("\n\n", held_out_chars)
    cut = held_out_chars if cut < 0 else cut
    return text[:cut], text[cut:]
