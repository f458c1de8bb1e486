"""A Lagrangian (perspective-relaxation) lower bound for best-subset pruning, valid at every node.

Split ``G = M + D`` with ``D = diag(d) > 0`` and ``M = G - D`` positive semi-definite. For a support ``S``
(``w`` zero off ``S``) and any ``u`` (n,), Fenchel duality on ``(w - w0)^T M (w - w0)`` and on each
``d_i (w_i - w0_i)^2`` gives, with ``y = 2 M u``, ``a_i = d_i w0_i^2 + y_i w0_i`` and
``t_i = d_i (w0_i + y_i / (2 d_i))^2 >= 0``,

    ``err(S) = min_{w: w_i = 0 off S} (w - w0)^T G (w - w0) >= c(u) - sum_{i in S} t_i``,
    ``c(u) = -u^T M u + sum_i a_i``.

So a search node with kept set ``K`` and ``k'`` more weights to keep among its free set ``F`` is bounded by
``c(u) - sum_K t_i - (the k' largest positive t_i in F)``: O(n) per node for a fixed ``u``. Maximising
the root's bound over ``u`` (a concave, non-smooth function) is the dual of the perspective relaxation of
best-subset selection (e.g. Dong, Chen & Linderoth 2015); here a Polyak subgradient ascent does it, and
every iterate is a valid bound, so stopping early costs tightness, never validity.

``d``: ``0.99 lambda_min(E^-1/2 G E^-1/2) E`` with ``E = 1 / diag(G^-1)`` (``M`` then certified positive
definite by a Cholesky factorisation). Measured on 3 real rows (n = 64, 4 bits; scratch script) this
gave a tighter root bound than ``E = diag(G)`` and than the max-trace SDP diagonal. Even the optimal
diagonal (the perspective SDP, 50-70 s per row in CVXPY) left root gaps of 18-75 % on those rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

__all__ = ["PruneDual", "prune_dual", "dual_node_bound"]


@dataclass(frozen=True)
class PruneDual:
    """``t`` (n,) per-weight terms and ``const`` (already lowered by a rounding margin) of the bound
    ``const - sum_K t - top_k'(t_F)``; ``root``: that bound at the root (keep any ``k`` weights);
    ``iters``: subgradient steps taken."""

    t: np.ndarray
    const: float
    root: float
    iters: int


def _split(G: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(d, M)`` with ``M = G - diag(d)`` certified positive definite, or None when ``G`` is singular."""
    try:
        L = np.linalg.cholesky(G)
    except np.linalg.LinAlgError:
        return None
    Li = np.linalg.solve(L, np.eye(G.shape[0]))
    E = 1.0 / np.einsum("ij,ij->j", Li, Li)  # 1 / diag(G^-1)
    s = 1.0 / np.sqrt(E)
    lam = float(np.linalg.eigvalsh(G * s[:, None] * s[None, :])[0])
    for shrink in (0.99, 0.9, 0.5):
        d = shrink * lam * E
        if lam <= 0:
            return None
        M = G - np.diag(d)
        try:
            np.linalg.cholesky(M)
        except np.linalg.LinAlgError:
            continue
        return d, M
    return None


def _terms(
    u: np.ndarray, M: np.ndarray, d: np.ndarray, w0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(y, t, const)`` at ``u``; ``const`` lowered by a margin for rounding."""
    Mu = M @ u
    y = 2.0 * Mu
    a = d * w0 * w0 + y * w0
    t = d * (w0 + y / (2.0 * d)) ** 2
    quad = float(u @ Mu)
    const = -quad + float(a.sum())
    margin = 1e-10 * (abs(quad) + float(np.abs(a).sum()) + float(t.sum()))
    return y, t, const - margin


def _root_value(t: np.ndarray, const: float, k: int) -> tuple[float, np.ndarray]:
    """The bound with any ``k`` weights kept, and the chosen set (bool (n,))."""
    pick = np.argsort(-t)[:k]
    S = np.zeros(t.shape[0], dtype=bool)
    S[pick] = True
    S &= t > 0
    return const - float(t[S].sum()), S


def prune_dual(
    G: np.ndarray, w0: np.ndarray, k: int, upper: float, iters: int = 2000, seconds: float | None = None
) -> PruneDual | None:
    """Maximise the root bound over ``u`` by Polyak subgradient steps aimed at ``upper`` (an incumbent's
    error), for at most ``iters`` steps or ``seconds``. ``G`` (n, n), ``w0`` (n,), ``k`` weights kept.
    Returns the best ``u``'s terms, or None when ``G`` is singular (no positive ``d``)."""
    split = _split(G)
    if split is None:
        return None
    d, M = split
    deadline = None if seconds is None else time.perf_counter() + seconds
    u = np.zeros_like(w0)
    best: tuple[float, np.ndarray, float] | None = None
    gamma, stall, steps = 1.0, 0, 0
    while steps < iters:
        steps += 1
        y, t, const = _terms(u, M, d, w0)
        val, S = _root_value(t, const, k)
        if best is None or val > best[0]:
            best, stall = (val, t, const), 0
        else:
            stall += 1
            if stall >= 40:
                gamma, stall = gamma / 2.0, 0
        # supergradient of c(u) - sum_S t_i in u: 2 M (g - u), g_i = w0_i off S, -y_i / (2 d_i) on S
        g = np.where(S, -y / (2.0 * d), w0)
        grad = 2.0 * (M @ (g - u))
        gg = float(grad @ grad)
        if gg == 0.0 or val >= upper or gamma < 1e-6:
            break
        u = u + gamma * max(upper - val, 0.0) / gg * grad
        if deadline is not None and time.perf_counter() > deadline:
            break
    assert best is not None
    return PruneDual(best[1], best[2], best[0], steps)


def dual_node_bound(dual: PruneDual, kept: np.ndarray, free: np.ndarray, k_more: int) -> float:
    """The bound at a node: ``kept``/``free`` bool (n,) masks, ``k_more`` weights still to keep."""
    tf = np.sort(dual.t[free])[::-1][: max(k_more, 0)]
    return dual.const - float(dual.t[kept].sum()) - float(tf[tf > 0].sum())
