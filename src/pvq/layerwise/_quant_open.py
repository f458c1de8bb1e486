"""The lower bound a stopped quantization search reports (box-constrained sphere decoding, integer units,
search order): its open subtrees, each bounded by its partial distance raised by the search's level bound and,
where given, by the Lagrangian bound of :mod:`pvq.layerwise._quant_dual`. Shared by the one-thread search
(:mod:`pvq.layerwise._quant_sphere`) and the split search (:mod:`pvq.layerwise._quant_split`).
"""

from __future__ import annotations

import numpy as np

from pvq.layerwise._quant_dual import QuantDual

__all__ = ["open_bound_dual"]


def _level_lb(j: int, v: float, CH, V, Dk, P1, lo: float, hi: float) -> float:
    """The search's own bound on the levels below ``j`` once ``z_j = v`` (see ``_fix_lb``): ``CH[j + 1]``
    must hold the continuous minimiser for the decided levels above ``j``."""
    if j == 0:
        return 0.0
    x = CH[j + 1, :j] + (v - CH[j + 1, j]) * V[j, :j]
    e = np.where(x <= lo, lo - x, np.where(x >= hi, x - hi, x - np.floor(x + 0.5)))
    e2 = e * e
    return float(max((Dk[j, :j] * e2).sum(), (P1[j, :j] * e2).max()))


def open_bound_dual(
    R, z, center, dist, up, dn, lo: float, hi: float, ctl, best: float, dual: QuantDual | None, tables
) -> float:
    """Lower bound of a stopped enumeration (integer units, search order): every open subtree (the pending
    candidate at the current level, and every value not yet tried at it and at each level above) is
    bounded by the larger of (its partial distance plus the search's bound on the levels below) and the
    Lagrangian bound with its decided levels fixed; the least of those. Without open subtrees: ``best``."""
    n = R.shape[0]
    k = int(ctl[0])
    CH, V, Dk, P1 = tables
    below = None if dual is None else np.concatenate(([0.0], np.cumsum(dual.fmin)))  # sum_{i < j} fmin_i
    fixed = 0.0  # sum of f_i(z_i) over the decided levels above j
    lb = best
    for j in range(n - 1, k - 1, -1):
        vals = [v for v in np.arange(lo, hi + 1.0) if v >= up[j] or v <= dn[j]]
        if j == k:
            vals.append(float(z[k]))
        for v in vals:
            t = R[j, j] * (v - center[j])
            part = dist[j + 1] + t * t
            if part >= lb:
                continue
            part += _level_lb(j, float(v), CH, V, Dk, P1, lo, hi)
            if dual is not None and below is not None:
                part = max(part, dual.const + fixed + dual.f(j, float(v)) + below[j])
            lb = min(lb, part)
        if dual is not None:
            fixed += dual.f(j, float(z[j]))
    return float(lb)
