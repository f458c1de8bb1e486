"""LLL reduction of a lattice given by an upper-triangular basis (compiled).

Used by the exact quantization solver for a *relaxation* only: the undecided levels of a box-constrained
search are a sublattice; dropping their box leaves a closest-vector problem, which a reduced basis
enumerates far faster. The search itself and its box are never transformed (a unimodular change of
basis does not keep a box a box).

Lenstra, Lenstra & Lovász (1982), in the QR form used for lattice decoding: size-reduce the columns of
``R`` and swap neighbours that violate the Lovász condition, restoring the triangle with a Givens rotation.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["lll_reduce"]


@njit(cache=True)
def _size_reduce(R, T, Ti, i, j):  # pragma: no cover - compiled
    """Column ``i`` -= ``mu`` column ``j`` (``j < i``) with ``mu`` the integer nearest ``R[j, i] / R[j, j]``;
    ``T`` follows the columns and ``Ti`` (its inverse) the rows."""
    mu = np.floor(R[j, i] / R[j, j] + 0.5)
    if mu == 0.0:
        return
    k = R.shape[0]
    for r in range(j + 1):
        R[r, i] -= mu * R[r, j]
    for r in range(k):
        T[r, i] -= mu * T[r, j]
        Ti[j, r] += mu * Ti[i, r]


@njit(cache=True)
def lll_reduce(R0, delta):  # pragma: no cover - compiled
    """LLL-reduce the columns of the upper-triangular basis ``R0`` (k, k) with Lovász parameter ``delta``
    (0.25 < delta < 1; 0.99 is usual).

    Returns ``(R, T, Ti)``: ``R`` (k, k) upper triangular with a positive diagonal, ``T`` (k, k) integer
    and unimodular with ``Ti = T^-1`` (also integer), such that ``R0 T = Q R`` for an orthogonal ``Q``,
    i.e. ``T^T (R0^T R0) T = R^T R``: the same lattice, the same quadratic form in the coordinates
    ``y = T^-1 x``.
    """
    k = R0.shape[0]
    R = R0.copy()
    T = np.eye(k)
    Ti = np.eye(k)
    i = 1
    guard = 0
    while i < k and guard < 1000 * k * k:
        guard += 1
        _size_reduce(R, T, Ti, i, i - 1)
        a = R[i - 1, i - 1]
        b = R[i - 1, i]
        c = R[i, i]
        if delta * a * a > b * b + c * c:
            # swap columns i - 1 and i (rows of Ti), then rotate rows i - 1, i back to triangular
            for r in range(k):
                t = R[r, i - 1]
                R[r, i - 1] = R[r, i]
                R[r, i] = t
                t = T[r, i - 1]
                T[r, i - 1] = T[r, i]
                T[r, i] = t
                t = Ti[i - 1, r]
                Ti[i - 1, r] = Ti[i, r]
                Ti[i, r] = t
            x = R[i - 1, i - 1]
            y = R[i, i - 1]
            h = np.sqrt(x * x + y * y)
            cs = x / h
            sn = y / h
            for col in range(i - 1, k):
                u = R[i - 1, col]
                v = R[i, col]
                R[i - 1, col] = cs * u + sn * v
                R[i, col] = cs * v - sn * u
            R[i, i - 1] = 0.0
            if i > 1:
                i -= 1
        else:
            for j in range(i - 2, -1, -1):
                _size_reduce(R, T, Ti, i, j)
            i += 1
    for r in range(k):  # a positive diagonal (row sign flips keep R^T R)
        if R[r, r] < 0.0:
            for col in range(r, k):
                R[r, col] = -R[r, col]
    return R, T, Ti
