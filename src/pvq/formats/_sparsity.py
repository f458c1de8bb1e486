"""N:M structured sparsity masks (pure numpy): keep the N largest |w| in every group of M consecutive weights."""

from __future__ import annotations

import numpy as np

__all__ = ["nm_mask"]


def nm_mask(w: np.ndarray, n: int, m: int, axis: int = -1) -> np.ndarray:
    """Boolean keep-mask of N:M magnitude pruning along ``axis`` (groups of ``m`` consecutive elements).

    ``w``: any shape whose size along ``axis`` is a multiple of ``m``. Returns a bool array of ``w``'s
    shape with exactly ``n`` True per group (ties broken by position: the earlier element is kept).
    Raises ``ValueError`` naming the argument on bad input.
    """
    w = np.asarray(w)
    if not (isinstance(n, (int, np.integer)) and isinstance(m, (int, np.integer))) or not 0 < n <= m:
        raise ValueError(f"nm_mask: need integers 0 < n <= m, got {n}:{m}")
    if w.ndim == 0 or w.size == 0:
        raise ValueError("nm_mask: w must be a non-empty array")
    if not np.all(np.isfinite(w)):
        raise ValueError("nm_mask: w contains NaN or Inf")
    moved = np.moveaxis(w, axis, -1)
    if moved.shape[-1] % m:
        raise ValueError(f"nm_mask: size {moved.shape[-1]} along axis {axis} is not a multiple of m={m}")
    groups = np.abs(moved.reshape(*moved.shape[:-1], -1, m))  # (..., G, M)
    order = np.argsort(-groups, axis=-1, kind="stable")  # largest first, earlier index on ties
    keep = np.zeros(groups.shape, dtype=bool)
    np.put_along_axis(keep, order[..., :n], True, axis=-1)
    return np.moveaxis(keep.reshape(moved.shape), -1, axis)
