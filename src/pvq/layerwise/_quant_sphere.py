"""Exact post-training quantization of one row: box-constrained integer least squares (paper eq. 4)
by Schnorr-Euchner sphere decoding, with a lattice oracle.

``min_z (z - c)^T G (z - c)``, ``c = w0 / scale``, ``z`` integer in ``[-2^(b-1), 2^(b-1) - 1]``.
With ``G = R^T R`` (Cholesky, in a box-aware V-BLAST order, below), the search enumerates one
level at a time, values in order of distance from their conditional centre and always inside the box.
The variables and their box are never transformed (a lattice reduction would turn the box into a
general polytope). The radius starts at the best heuristic (box-constrained Babai point, RTN, GPTQ, + 1-opt)
and shrinks with every better point; a candidate is also dropped when its partial distance plus a
lower bound on the undecided levels (diagonal, and single-coordinate) reaches the radius.

The order (``order="hybrid"``, the default): position ``n - 1`` (decided first) and on down, take the
variable with the largest ``R_jj`` (V-BLAST), except that a variable whose conditional centre lies outside
the box (a weight the grid clips) is scored by Chang & Han's criterion (``R_jj`` times the distance to its
second-best in-box integer, at least ``R_jj``), so clipped weights are decided first. Measured on the 8
MobileNetV2 ``features.8.conv.0.0`` whole rows (n = 64, 4 bits, 10 s, same process): Chang & Han's order
(``order="box"``, the order before) took 1.1-4.8 s per row with one thread (median 2.2 s), V-BLAST 0.85-3.0 s
on the 5 rows with no clipped weight but 7.8 s and over 10 s on two of the 3 with one; the hybrid took
0.74-2.98 s (median 1.13 s), at most the better of the two on every row (15.8M-40.3M nodes), and with
``threads=2`` 0.48-1.50 s (median 0.66 s).

The diagonal bound uses ``Q_k >= diag(D_k)`` for the undecided levels' Gram block ``Q_k``. ``D_k`` is the
Jacobi-scaled one (``t / diag(Q_k^-1)``) or, by default once a search has run 10 batches, the
larger-trace of it and a max-trace diagonal (``max sum D s.t. Q_k >= diag(D) >= 0``, by the mixing method,
certified; ``diag_bound="maxtrace"``). Measured with a 10 s limit, 8 rows per set, same process, against
``diag_bound="jacobi"``: MobileNetV2 ``features.8.conv.0.0`` whole rows (n = 64, cond(G) ~ 3e3, 4 bits)
8/8 proved against 6/8, median 1.9 s against 4.8 s, 1.8-2.5x fewer nodes where both proved (e.g. 70.9M ->
28.9M); ``features.2.conv.2`` (n = 96) median 0.35 s against 0.41 s, 1.0-1.4x fewer nodes; MiniLM chunks
of 64 alike (all <= 0.3 s; most finish before the swap); MiniLM chunks of 128: 0/8 either way, a higher bound on
every row (e.g. 68.9 -> 81.2) and a better point on 3. Its trace is 1.2-2.9x the Jacobi one; building it
costs ~0.05 s at n = 64, ~0.1 s at n = 96, ~0.3 s at n = 128. The rows left open at n = 128 are far out of
reach of any enumeration with these bounds: the Gaussian-heuristic size of the tree (LLL basis, at the
best value found) is 3e10-9e10 nodes on the rows where the box does not bind, against ~1e7 nodes/s.

The three MiniLM chunk-of-128 rows that the issue-16 run left open at 60 s (rows 0, 3, 7; two threads)
were given 200 s (scratch script): row 7 was proved in 144 s (1.39e9 nodes); rows 0 and 3 stayed open with
gaps 0.71 and 0.64 (5.2e9 and 2.5e9 nodes). The paper's SDP bound is no help there: CVXPY + Clarabel did not
solve it to tolerance in 120 s at n = 128, with or without the box.

The oracle (from 3 bits up): at a node whose undecided levels have their continuous optimum inside the
box, those levels are solved *without* their box, a closest-vector problem, enumerated in an
LLL-reduced basis (deep insertions) of their sublattice, which is far better conditioned than the
box-constrained search order. Dropping the box only lowers the optimum, so nothing below the radius
there proves the node empty; a minimiser that lies inside the box is the node's best completion. Either
way the node is closed. Only when the minimiser leaves the box does the search descend as usual.
On ill-conditioned ``G`` this closes the tree near the root (n = 36, cond(G) ~ 2e3: a median 4-9x
faster than without it; n = 28, cond ~ 1e5, 4-8 bits: over 100x faster). On near-orthogonal real rows
(the MobileNetV2 ones above: the LLL-reduced basis is hardly better than the search order) it fails on its
budget at the top levels and is switched off after 5 calls (4M nodes); ``oracle="box"`` keeps the box
inside the reduced-basis enumeration (``_box_enum``: only in-box points count, nodes whose range of some
original coordinate misses the box are dropped), so an oracle call is never wasted on a minimiser outside
the box; measured on those rows it did not pay (row 4, Jacobi bound: 49.7M nodes against 31.5M; with
``oracle_kmax=40`` the same nodes as the box-free oracle, slower per node) and is not the default.
``threads > 1``: a search still running after its first 2M nodes (~0.1 s) starts again on threads, the
tree split below its top levels into subtrees handed out with a shared radius (:mod:`pvq.layerwise._quant_split`;
the bound at a time limit is then the open-subtree one); a short search stays on one thread, where the split
would cost more than it saves (MiniLM chunks of 64: 0.05 s per row split at once, against 0.02 s on one).
Certificate: ``optimal``, or at the time limit the gap to the best valid bound: each open subtree is
bounded by the larger of its partial distance and a Lagrangian bound (:mod:`pvq.layerwise._quant_dual`,
its multipliers maximised at the root once the limit is hit), and the least of those is reported
(``stop_bound="open"``: partial distances only, the solver before the Lagrangian bound).
"""

from __future__ import annotations

import time

import numpy as np

from pvq.layerwise._linalg import check_row, safe_cholesky, safe_inverse
from pvq.layerwise._quant_dual import quant_dual
from pvq.layerwise._quant_heuristics import polish, quant_gptq, quant_rtn
from pvq.layerwise._quant_kernels import box_order_kernel, level_tables, se_drive, se_open_bound
from pvq.layerwise._quant_open import open_bound_dual
from pvq.layerwise._quant_split import split_search
from pvq.layerwise._result import SolveResult, relative_gap, row_error

__all__ = ["quant_exact", "vblast_order", "box_order", "lattice_tables", "ORDERS"]

ORDERS = ("hybrid", "box", "vblast", "natural")
ORACLES = ("relaxed", "box", "box_all")
DIAG_BOUNDS = ("jacobi", "maxtrace")
ORACLE_KMIN = 8  # smaller subproblems: the plain search is cheaper than reducing them
ORACLE_KMAX = 64  # larger: reduction and enumeration without a box rarely pay


def vblast_order(G: np.ndarray) -> np.ndarray:
    """Search order (position ``n - 1`` is decided first): repeatedly take, among the variables left,
    the one with the smallest ``(G_SS^-1)_jj`` (largest ``R_jj``) for the last free position; ``G_SS^-1``
    is downdated by a rank-one step each time. Returns a permutation (n,)."""
    n = G.shape[0]
    H, _ = safe_inverse(G)
    left = np.ones(n, dtype=bool)
    order = np.empty(n, dtype=np.int64)
    for pos in range(n - 1, -1, -1):
        d = np.where(left, np.diag(H), np.inf)
        j = int(np.argmin(d))
        order[pos] = j
        left[j] = False
        hj = H[:, j].copy()
        H -= np.outer(hj, hj) / max(hj[j], 1e-300)
        H[j, :] = 0.0
        H[:, j] = 0.0
    return order


def box_order(
    G: np.ndarray, c: np.ndarray, lo: float, hi: float, hybrid: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Box-aware V-BLAST order (Chang & Han, 2008) and the box-constrained Babai point it visits.

    For the last free position take the variable whose *second-best* in-box integer lies farthest
    from its conditional centre (scaled by ``R_jj = (G_SS^-1)_jj^-1/2``): the most decided one. Fix it
    at its nearest in-box integer, move the other centres to their conditional optimum
    (``c_S += H_Sj / H_jj (z_j - c_j)``) and downdate ``H``. Returns (order (n,), Babai integers (n,)).

    ``hybrid``: a variable whose centre lies inside the box is scored by ``R_jj`` alone (V-BLAST's
    criterion, as if its second-best integer were one step away); only the centres outside the box
    (weights the grid clips) keep Chang & Han's score, which is then at least ``R_jj``, so they come first.
    """
    H, _ = safe_inverse(G)
    return box_order_kernel(
        np.ascontiguousarray(H), np.asarray(c, dtype=np.float64), float(lo), float(hi), bool(hybrid)
    )


def level_bounds(
    R: np.ndarray, c: np.ndarray, bound: bool = True, maxtrace: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tables for the search's lower bound on the undecided levels (see ``se_run`` and ``level_tables``):
    ``CH`` (n + 1, n), ``V`` (n, n), ``Dk`` (n + 1, n), ``P1`` (n + 1, n). ``bound=False`` zeroes ``Dk`` and
    ``P1`` (plain sphere decoding)."""
    return level_tables(
        np.ascontiguousarray(R), np.ascontiguousarray(c, dtype=np.float64), bool(bound), bool(maxtrace)
    )


def lattice_tables(n: int, kmax: int, box: bool = False) -> tuple[np.ndarray, ...]:
    """Per-level storage for the lattice oracle of :func:`se_drive` (levels ``k <= kmax``): the
    LLL-reduced factor, its unimodular transform and the inverse, flattened, a ``ready`` flag per level (a
    level is filled on first use), and with ``box`` the box-aware oracle's ``A`` and ``S2`` tables (see
    ``_box_enum``)."""
    K = max(1, min(n, kmax))
    B = K if box else 1
    return (np.empty((K + 1, K * K)), np.empty((K + 1, K * K)), np.empty((K + 1, K * K)),
            np.zeros(K + 1, dtype=np.bool_), np.empty((B + 1, B * B)), np.empty((B + 1, (B + 1) * B)))  # fmt: skip


def quant_exact(
    G: np.ndarray,
    w0: np.ndarray,
    scale: float,
    bits: int,
    time_limit: float | None = 60.0,
    warm_start: np.ndarray | None = None,
    batch_nodes: int = 200000,
    order: str = "hybrid",
    bound: bool = True,
    relax: bool | None = None,
    stop_bound: str = "lagrange",
    oracle: str = "relaxed",
    oracle_kmax: int | None = None,
    threads: int = 1,
    diag_bound: str = "maxtrace",
) -> SolveResult:
    """Optimal integers for one row. ``G`` (n, n), ``w0`` (n,), ``scale`` > 0, ``bits`` >= 1.

    ``warm_start``: optional (n,) dequantized candidate. ``order``: the search order, one of
    :data:`ORDERS` (see the module docstring; ``box`` is the order before). ``relax``: consult the box-relaxed oracle
    (:func:`se_drive`) on the undecided levels of nodes whose continuous optimum is inside the box;
    ``None``: from 3 bits up (at 1-2 bits the box binds nearly everywhere, and the plain search is faster).
    ``nodes`` in the result counts the search's and the oracle's candidates together.
    ``stop_bound``: ``lagrange`` or ``open``, the bound reported at a time limit (see the module
    docstring; the Lagrangian bound's ascent is given the last 10 % of ``time_limit``, 2 s at most).
    ``oracle``: ``relaxed`` (box-free enumeration, as before), ``box`` (in-box points only, at the same
    nodes) or ``box_all`` (in-box points only, at every node of the oracle's levels); ``oracle_kmax``:
    the highest level that consults it (default ``min(n - 1, 64)``). ``threads``: workers on one row
    (see :mod:`pvq.layerwise._quant_split`). ``diag_bound``: ``maxtrace`` (default) or ``jacobi`` (the
    level bound before; see the module docstring).
    Returns weights ``scale * z``.
    """
    if diag_bound not in DIAG_BOUNDS:
        raise ValueError(f"diag_bound must be one of {DIAG_BOUNDS}, got {diag_bound!r}")
    if oracle not in ORACLES:
        raise ValueError(f"oracle must be one of {ORACLES}, got {oracle!r}")
    if stop_bound not in ("lagrange", "open"):
        raise ValueError(f"stop_bound must be 'lagrange' or 'open', got {stop_bound!r}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    t0 = time.perf_counter()
    G, w0 = check_row(G, w0)
    if not scale > 0 or not np.isfinite(scale):
        raise ValueError(f"scale must be positive and finite, got {scale!r}")
    G = np.ascontiguousarray(G)
    n = w0.shape[0]
    lo, hi = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    c = w0 / scale
    # starting points: RTN and GPTQ, each + 1-opt (GPTQ too, so that a search stopped at its time limit
    # is never worse than the heuristic: on MiniLM rows of n = 128 it was, without it)
    cands = [quant_rtn(G, w0, scale, bits, one_opt=True).solution, quant_gptq(G, w0, scale, bits).solution]
    if warm_start is not None:
        cands.append(np.clip(np.round(np.asarray(warm_start, dtype=np.float64) / scale), lo, hi) * scale)
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if order in ("hybrid", "box"):
        perm, zb = box_order(G, c, lo, hi, hybrid=order == "hybrid")
        cands.append(scale * polish(G, w0, zb, scale, bits))
    else:
        perm = vblast_order(G) if order == "vblast" else np.arange(n)
    order_ = perm
    L, ridge = safe_cholesky(G[np.ix_(order_, order_)])
    notes = (f"ridge {ridge:.3g} added to G for its Cholesky factor (singular G)",) if ridge else ()
    R = np.ascontiguousarray(L.T)
    cp = np.ascontiguousarray(c[order_])

    def dist(w: np.ndarray) -> float:
        zp = np.round(w / scale)[order_]
        v = R @ (zp - cp)
        return float(v @ v)

    dists = [dist(w) for w in cands]
    i0 = int(np.argmin(dists))
    best_z = np.round(cands[i0] / scale)[order_].astype(np.float64)
    best_d = np.array([dists[i0]])
    z = np.zeros(n)
    center = np.zeros(n)
    dd = np.zeros(n + 1)
    up = np.zeros(n)
    dn = np.zeros(n)
    ctl = np.zeros(7, dtype=np.int64)
    sig = np.zeros((n, n + 1))
    stale = np.full(n, n - 1, dtype=np.int64)
    rs = np.full(n, n - 1, dtype=np.int64)
    # CH, V, Dk, P1; the max-trace diagonal only for a long search (below)
    maxtrace = bound and diag_bound == "maxtrace"
    tables = level_bounds(R, cp, bound, False)
    kmax = min(n - 1, ORACLE_KMAX if oracle_kmax is None else oracle_kmax)
    if relax is None:
        relax = bits >= 3
    use = relax and kmax >= ORACLE_KMIN
    mode = ORACLES.index(oracle)
    # [on, kmin, kmax, oracle node budget per call, helped, failed, mode]
    orc = np.array([int(use), ORACLE_KMIN, kmax, 4 * batch_nodes, 0, 0, mode], dtype=np.int64)
    lat = lattice_tables(n, kmax if use else 1, box=use and mode > 0)
    split = threads > 1 and n >= 3
    status = "optimal"
    # with the Lagrangian bound, the last tenth of the limit (2 s at most) is kept for it: half for the
    # ascent, half for bounding the open subtrees
    dual_secs = min(2.0, 0.1 * time_limit) if time_limit is not None and stop_bound == "lagrange" else 0.0
    search_limit = None if time_limit is None else time_limit - dual_secs
    while True:
        se_drive(
            R, cp, lo, hi, best_z, best_d, z, center, dd, up, dn, ctl, batch_nodes, sig, stale, rs, *tables, orc,
            lat,
        )  # fmt: skip
        if ctl[2]:
            break
        if (maxtrace or split) and ctl[3] + ctl[6] >= 10 * batch_nodes:
            # a long search (2M nodes by default, ~0.1 s): a stronger bound for the rest of it (any valid
            # bound serves at any time); building it takes ~0.04 s at n = 64, ~0.3 s at n = 128
            if maxtrace:
                np.copyto(tables[2], level_bounds(R, cp, True, True)[2])
                maxtrace = False
            # and on threads from here (a short search stays on one: it is over before the split pays)
            if split:
                return _quant_split(
                    G, w0, scale, n, order_, R, cp, lo, hi, tables, best_z, float(best_d[0]), threads, batch_nodes,
                    orc, kmax if use else 1, use and mode > 0, None if time_limit is None else t0 + time_limit,
                    notes, t0, int(ctl[3] + ctl[6]),
                )  # fmt: skip
        if time_limit is not None and time.perf_counter() - t0 > search_limit:
            status = "time_limit"
            break
    zz = np.empty(n)
    zz[order_] = best_z
    w = scale * zz
    value = row_error(G, w0, w)
    if status == "optimal":
        bound, gap = value, 0.0
    else:
        lb = se_open_bound(R, z, center, dd, up, dn, lo, hi, ctl, float(best_d[0]))
        if stop_bound == "lagrange":
            dual = quant_dual(G[np.ix_(order_, order_)], cp, lo, hi, float(best_d[0]), seconds=dual_secs / 2)
            lb = max(
                lb, open_bound_dual(R, z, center, dd, up, dn, lo, hi, ctl, float(best_d[0]), dual, tables)
            )
            if dual is not None:
                notes += (f"Lagrangian root bound {dual.root * scale**2:.6g} ({dual.iters} dual steps)",)
        lb *= scale**2
        bound = min(lb, value)
        gap = relative_gap(value, bound)
    nodes = int(ctl[3] + ctl[6])
    oracle = (int(orc[4]), int(orc[5]), int(ctl[6]))
    return SolveResult(
        value, bound, gap, time.perf_counter() - t0, status, w, nodes=nodes, notes=notes, oracle=oracle
    )


def _quant_split(
    G,
    w0,
    scale,
    n,
    order_,
    R,
    cp,
    lo,
    hi,
    tables,
    best_z,
    radius,
    threads,
    batch_nodes,
    orc,
    K,
    box,
    deadline,
    notes,
    t0,
    nodes0,
) -> SolveResult:
    """``quant_exact`` with ``threads > 1``: the search of :func:`pvq.layerwise._quant_split.split_search`
    from the incumbent ``best_z`` (search order) of distance ``radius``, after a one-thread search of
    ``nodes0`` nodes that did not finish (it is searched again); at a time limit the bound is the
    open-subtree bound (partial distances, no Lagrangian bound)."""
    out = split_search(
        R, cp, lo, hi, tables, radius * (1.0 + 1e-12), threads, batch_nodes, orc, lambda: lattice_tables(n, K, box),
        deadline,
    )  # fmt: skip
    if out.best_z is not None and out.best_d < radius:
        best_z = out.best_z
    zz = np.empty(n)
    zz[order_] = best_z
    w = scale * zz
    value = row_error(G, w0, w)
    if out.done:
        status, bound, gap = "optimal", value, 0.0
    else:
        status = "time_limit"
        bound = min(out.lower * scale**2, value)
        gap = relative_gap(value, bound)
    return SolveResult(
        value, bound, gap, time.perf_counter() - t0, status, w, nodes=nodes0 + out.nodes + out.oracle_nodes, notes=notes,
        oracle=(out.helped, out.failed, out.oracle_nodes),
    )  # fmt: skip
