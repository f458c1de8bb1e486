"""Exceptions that the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations

__all__ = ["PvqError", "PvqInputError"]


class PvqError(Exception):
    """Base class of pvq's own errors."""


class PvqInputError(PvqError, ValueError):
    """Bad input from the user: a file, tensor or argument that pvq cannot use.

    The message must name the offending file/argument and say what is wrong, in one line.
    """
