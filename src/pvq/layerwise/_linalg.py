"""Linear algebra shared by the solvers: Cholesky with a ridge fallback, least-squares refit on a support."""

from __future__ import annotations

import numpy as np

__all__ = ["safe_cholesky", "safe_inverse", "refit", "prune_count", "signal_power", "check_row"]


def prune_count(n: int, bits: int) -> int:
    """Non-zeros kept at ``bits`` bits on ``n`` weights: ``k = floor(n * b / 16)`` (equal compression vs FP16)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 1 <= int(bits) <= 16:
        raise ValueError(f"bits must be in 1..16, got {bits}")
    return (int(n) * int(bits)) // 16


def check_row(G: np.ndarray, w0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``G`` (n, n) and ``w0`` (n,) as float64, or a ``ValueError`` naming what is wrong (shape, NaN/Inf).

    For the per-row solvers called directly; files and layers are checked more fully by ``check_problem``."""
    G = np.asarray(G, dtype=np.float64)
    w0 = np.asarray(w0, dtype=np.float64)
    if w0.ndim != 1 or w0.shape[0] == 0:
        raise ValueError(f"w0 must be a non-empty vector (n,), got shape {w0.shape}")
    if G.shape != (w0.shape[0], w0.shape[0]):
        raise ValueError(f"G must have shape ({w0.shape[0]}, {w0.shape[0]}) to match w0, got {G.shape}")
    if not (np.isfinite(G).all() and np.isfinite(w0).all()):
        raise ValueError("G and w0 must be finite (found NaN or Inf)")
    return G, w0


def signal_power(G: np.ndarray, w0: np.ndarray) -> float:
    """``||X w0||^2 = w0^T G w0``: the numerator of the output SNR."""
    w0 = np.asarray(w0, dtype=np.float64)
    return float(w0 @ G @ w0)


def safe_cholesky(G: np.ndarray) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor ``L`` (``G + ridge I = L L^T``) and the ridge used (0 unless ``G`` is singular).

    The ridge starts at ``1e-12 * mean(diag G)`` and grows tenfold until the factorisation succeeds.
    """
    G = np.asarray(G, dtype=np.float64)
    try:
        return np.linalg.cholesky(G), 0.0
    except np.linalg.LinAlgError:
        pass
    base = float(np.mean(np.abs(np.diag(G)))) or 1.0
    eye = np.eye(G.shape[0])
    ridge = 1e-12 * base
    for _ in range(14):
        try:
            return np.linalg.cholesky(G + ridge * eye), ridge
        except np.linalg.LinAlgError:
            ridge *= 10.0
    raise np.linalg.LinAlgError("G is not positive semi-definite (Cholesky failed even with a ridge)")


def safe_inverse(G: np.ndarray) -> tuple[np.ndarray, float]:
    """``(G + ridge I)^-1`` through :func:`safe_cholesky`, and the ridge used."""
    L, ridge = safe_cholesky(G)
    Linv = np.linalg.solve(L, np.eye(L.shape[0]))
    return Linv.T @ Linv, ridge


def refit(G: np.ndarray, w0: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Least-squares weights on the support ``keep`` (bool (n,)): ``argmin_w ||X(w - w0)||^2``, ``w = 0`` off it.

    ``w_S = G_SS^-1 (G w0)_S`` (normal equations); a pseudo-inverse covers a singular ``G_SS``.
    """
    G = np.asarray(G, dtype=np.float64)
    w0 = np.asarray(w0, dtype=np.float64)
    keep = np.asarray(keep, dtype=bool)
    w = np.zeros_like(w0)
    if not keep.any():
        return w
    b = G @ w0
    Gs = G[np.ix_(keep, keep)]
    try:
        L = np.linalg.cholesky(Gs)
        w[keep] = np.linalg.solve(L.T, np.linalg.solve(L, b[keep]))
    except np.linalg.LinAlgError:
        w[keep] = np.linalg.lstsq(Gs, b[keep], rcond=None)[0]
    return w
