"""What every per-row solver returns: a frozen :class:`SolveResult` (value, bound, gap, seconds, status)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SolveResult", "STATUSES", "relative_gap", "row_error"]

STATUSES = ("optimal", "time_limit", "heuristic", "inaccurate", "skipped")


@dataclass(frozen=True)
class SolveResult:
    """One solve of one row.

    ``value``: output error ``(w - w0)^T G (w - w0) = ||X (w - w0)||^2`` of ``solution`` (for a bound
    solver: the lower bound itself). ``bound``: a proved lower bound on the optimum (``nan`` when the
    solver proves none). ``gap``: ``(value - bound) / value`` (0 when proved optimal, ``nan`` when
    there is no bound). ``seconds``: wall time. ``status``: ``optimal`` (certified; for a bound solver:
    its relaxation solved to the solver's tolerance), ``time_limit`` (stopped early; ``bound``/``gap``
    still valid), ``heuristic``, ``inaccurate`` (a bound solver's relaxation was not solved to tolerance:
    ``value``/``bound`` are ``nan``, no bound is claimed; ``notes`` say what the solver returned) or
    ``skipped`` (no result: not started, e.g. too large for this machine or the time limit, or every
    solver it tried failed; ``value`` ``nan``, ``notes`` say why). ``solution``: weights ``w`` (n,) (quantization: ``scale * z``, dequantized; ``None``
    for a pure bound). ``nodes``: search nodes (candidates scored), for the branch-and-bound solvers.
    ``oracle``: for exact quantization, the box-relaxed oracle's (calls that dropped a node, calls that
    did not, nodes it scored; those are part of ``nodes``). ``notes``: anything the caller must know
    (e.g. a ridge added to ``G``).
    """

    value: float
    bound: float
    gap: float
    seconds: float
    status: str
    solution: np.ndarray | None = field(default=None, compare=False, repr=False)
    nodes: int = 0
    notes: tuple[str, ...] = ()
    oracle: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"SolveResult.status must be one of {STATUSES}, got {self.status!r}")


def relative_gap(value: float, bound: float) -> float:
    """``(value - bound) / value`` clipped at 0; 0 when value is 0; ``nan`` without a bound."""
    if not math.isfinite(bound):
        return math.nan
    if value <= 0.0:
        return 0.0
    return max(0.0, (value - bound) / value)


def row_error(G: np.ndarray, w0: np.ndarray, w: np.ndarray) -> float:
    """Output error ``(w - w0)^T G (w - w0)`` (eq. 4/7 without averaging), float64, clipped at 0."""
    d = np.asarray(w, dtype=np.float64) - np.asarray(w0, dtype=np.float64)
    return max(0.0, float(d @ G @ d))
