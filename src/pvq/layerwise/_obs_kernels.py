"""The OBS step shared by the compiled solvers: fix one coordinate in an inverse Hessian."""

from __future__ import annotations

from numba import njit

__all__ = ["drop_coordinate"]


@njit(cache=True)
def drop_coordinate(H, j, hj, hjj):  # pragma: no cover - compiled
    """Remove coordinate ``j`` from the inverse Hessian ``H`` (n, n) in place: ``H -= hj hjᵀ / hjj``, then
    zero row and column ``j``. ``hj`` is a copy of ``H[:, j]`` taken before the call, ``hjj > 0`` its pivot."""
    n = H.shape[0]
    for i in range(n):
        f = hj[i] / hjj
        if f != 0.0:
            for l in range(n):
                H[i, l] -= f * hj[l]
    for i in range(n):
        H[i, j] = 0.0
        H[j, i] = 0.0
