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
def _insert(R, T, Ti, j, i):  # pragma: no cover - compiled
    """Move column ``i`` to position ``j < i`` (columns ``j..i-1`` shift right; rows of ``Ti`` likewise),
    then restore the triangle with Givens rotations on rows ``(l - 1, l)``, ``l = i .. j + 1``."""
    k = R.shape[0]
    for r in range(k):
        t = R[r, i]
        u = T[r, i]
        for p in range(i, j, -1):
            R[r, p] = R[r, p - 1]
            T[r, p] = T[r, p - 1]
        R[r, j] = t
        T[r, j] = u
    for col in range(k):
        t = Ti[i, col]
        for p in range(i, j, -1):
            Ti[p, col] = Ti[p - 1, col]
        Ti[j, col] = t
    for l in range(i, j, -1):
        x = R[l - 1, j]
        y = R[l, j]
        if y == 0.0:
            continue
        h = np.sqrt(x * x + y * y)
        cs = x / h
        sn = y / h
        for col in range(j, k):
            u = R[l - 1, col]
            v = R[l, col]
            R[l - 1, col] = cs * u + sn * v
            R[l, col] = cs * v - sn * u
        R[l, j] = 0.0


@njit(cache=True)
def _swap_pass(R, T, Ti, delta):  # pragma: no cover - compiled
    """Textbook LLL: size-reduce column ``i`` against ``i - 1``, swap the two if the Lovász condition
    fails (and step back), else finish size-reducing ``i`` and move on."""
    k = R.shape[0]
    i = 1
    guard = 0
    while i < k and guard < 1000 * k * k:
        guard += 1
        _size_reduce(R, T, Ti, i, i - 1)
        if delta * R[i - 1, i - 1] ** 2 > R[i - 1, i] ** 2 + R[i, i] ** 2:
            _insert(R, T, Ti, i - 1, i)
            i = max(i - 1, 1)
        else:
            for j in range(i - 2, -1, -1):
                _size_reduce(R, T, Ti, i, j)
            i += 1


@njit(cache=True)
def _deep_pass(R, T, Ti, delta, depth):  # pragma: no cover - compiled
    """Deep insertions (Schnorr & Euchner): column ``i``, size-reduced, moves to the first position ``j``
    where its projection orthogonal to columns ``0..j-1`` is shorter than ``delta`` times ``R[j, j]``;
    positions ``j < depth`` and ``j = i - 1`` are tried (``depth >= k``: all)."""
    k = R.shape[0]
    i = 1
    guard = 0
    while i < k and guard < 1000 * k * k:
        guard += 1
        for j in range(i - 1, -1, -1):
            _size_reduce(R, T, Ti, i, j)
        C = 0.0
        for r in range(i + 1):
            C += R[r, i] * R[r, i]
        pos = i
        for j in range(i):
            if (j < depth or j == i - 1) and C < delta * R[j, j] * R[j, j]:
                pos = j
                break
            C -= R[j, i] * R[j, i]
        if pos < i:
            _insert(R, T, Ti, pos, i)
            i = max(pos, 1)
        else:
            i += 1


@njit(cache=True)
def lll_reduce(R0, delta, depth=0):  # pragma: no cover - compiled
    """LLL-reduce the columns of the upper-triangular basis ``R0`` (k, k) with Lovász parameter ``delta``
    (0.25 < delta < 1; 0.99 is usual). ``depth > 0``: then a pass of Schnorr & Euchner's deep insertions
    (a column may move to any of the first ``depth`` positions where its projection is shorter than
    ``delta`` times that position's Gram-Schmidt vector, not only one step back): a stronger reduction
    for more work.

    Returns ``(R, T, Ti)``: ``R`` (k, k) upper triangular with a positive diagonal, ``T`` (k, k) integer
    and unimodular with ``Ti = T^-1`` (also integer), such that ``R0 T = Q R`` for an orthogonal ``Q``,
    i.e. ``T^T (R0^T R0) T = R^T R``: the same lattice, the same quadratic form in the coordinates
    ``y = T^-1 x``.
    """
    k = R0.shape[0]
    R = R0.copy()
    T = np.eye(k)
    Ti = np.eye(k)
    _swap_pass(R, T, Ti, delta)
    if depth > 0:
        _deep_pass(R, T, Ti, delta, depth)
    for r in range(k):  # a positive diagonal (row sign flips keep R^T R)
        if R[r, r] < 0.0:
            for col in range(r, k):
                R[r, col] = -R[r, col]
    return R, T, Ti
