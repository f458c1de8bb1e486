"""Exact post-training pruning of one row (paper eq. 7-8) by branch-and-bound over supports.

``min ||X(w - w0)||^2 s.t. ||w||_0 <= k`` is best-subset selection. Each node fixes some weights to
zero (pruned set ``P``) and some to non-zero (kept set ``K``); its bound is the least-squares error
with only ``P`` removed (monotone in ``P``), raised by the cheapest single further prune and by an
eigenvalue bound on the ``r`` prunes still to make (two diagonal scalings, the better per node).
Pruning a weight is an OBS rank-one downdate of ``H = G_RR^-1``; keeping one is a sweep of the keep-side
state, the Schur complement ``S`` of the free set given ``K`` (and the residual correlations). A prune
child downdates ``H`` and shares its parent's ``S``, a keep child sweeps ``S`` and shares its parent's
``H``, each touching only the remaining rows and columns (O(|R|^2) / O(|F|^2), no copy of the other).
A node with at most ``leaf_keep`` (default 2) weights left to keep is a leaf: its best completion is
computed exactly from ``S`` (:func:`pvq.layerwise._prune_kernels.keep_leaf`, O(|F|^2) for pairs). The
search starts from the best heuristic (magnitude, OBS, 1-swap) and returns a certificate: ``optimal``
(gap 0) or, at the time limit, the best support and the gap to the best valid bound. ``threads > 1``
searches subtrees of the row in parallel with a shared incumbent (:mod:`pvq.layerwise._prune_search`).

Measured (scratch scripts, same process, the solver before as reference; 2-core machine shared with other
jobs, so times are noisy): the leaves from ``S`` instead of a Cholesky of ``G_KK``, evaluated before the
node's other bounds, and the shared slots keep the tree (equal node counts) and cut the time per node: on
4 whole n = 64 real rows, 4 bits (MobileNetV2 ``features.8.conv.0.0``, MiniLM ``attention.output`` chunks
of 64), 20 s limit, 0.75 / 3.92 / 8.20 s -> 0.59 / 2.86 / 5.91 s (1.27-1.39x), and a row the solver before
left open at 20 s was proved in 16.1 s (nodes per second 1.48x); on 4 rows cut to n = 56, 6.41 -> 4.92 s
(1.30x, 1,176,971 nodes). In benchmark part 4 (4 rows per set, 10 s) the median nodes per row were 1.9x (n
= 96) and 2.2x (n = 128) those of the recorded 8-row run (``results/cpu/bench_layerwise_whole_rows.txt``),
and still no row of those sets was proved. ``threads=2`` (second core free) took 2.56 s where one thread
took 5.08 s on those n = 56 rows (1.98x), and 0.32 / 1.49 / 3.18 s where one took 0.61 / 2.93 / 5.87 s on
the 3 n = 64 rows (1.85-1.97x); with the second core busy with another job it gained nothing.

Cheaper nodes, the same tree (scratch script, one thread, MobileNetV2 ``features.8.conv.0.0`` whole
rows 0 / 1 / 4 of benchmark part 4, n = 64, 4 bits, quiet 2-core machine): the eigenvalue bound's sum of
the ``r`` smallest scaled energies by in-place selection instead of a sort (5.43 / 14.87 / 4.10 s -> 3.87 /
11.16 / 2.82 s), pair leaves without a division per pair (-> 3.77 / 10.27 / 2.62 s), the rank-one sweeps
over whole contiguous rows instead of a gather over the remaining set (-> 2.89 / 7.89 / 2.02 s; 1.1M /
3.2M / 0.8M nodes throughout), and the second diagonal scaling evaluated only on nodes the first leaves
open (rows 0 and 4: 2.96 -> 2.74 s, 1.93 -> 1.91 s).

Tried and left off by default, with their numbers on the n = 56 rows: ``leaf_keep=3`` (exact leaves at
three weights left, O(|F|^3)) cuts the nodes 2.5x (1,176,971 -> 470,627) but not the time (time ratio 0.87-1.09x
over n = 56 and 64 rows; at n = 64 no such node had 32 or fewer free weights); ``spectral=1/2``, a node-local spectral bound (``lambda_max``
of the node's Jacobi-scaled ``H_FF`` by Frobenius norm, or certified by power iteration and a Cholesky
factorisation) closes 1 % / 20 % more nodes and costs 1.5x / 2.0x the time; the Lagrangian node bound
(``bound="lagrange"``) closed no node. Branching on the largest keep-side gain instead of the largest
pruning cost took 5.7x the nodes. Why the tree stays large: on 24 sampled branched nodes with four weights
left to keep (two n = 56 rows) the node bound was 0.37-1.0x the optimum while the nodes' best completions
were 1.26-2.15x it, and closing every node within 10 % of the incumbent (``rtol=0.1``) only halves the
nodes.

Where the time goes (scratch scripts, one thread, rows 0-3 of each n = 64 set of benchmark part 4, 4 bits,
20 s limit). The search is limited by its bounds, not by finding the optimum: the 1-swap start is 0-15 %
above the optimum on these rows, yet a search started from the proved optimum evaluates 87-99 % of the
nodes (one thread; ``benchmarks/bench_layerwise.py --warm-check``, two threads, 16 rows: a median 0.98x,
0.74-1.00x). On MobileNetV2 row 0 (1.10M nodes), 0.38M are pair
leaves, 0.42M nodes have three weights left to keep (90 % of them branch) and 0.17M four. Cheaper nodes
again, the same tree (the shared machine's speed drifts by up to 30 % between runs, so A/B runs were
interleaved): the sum of the ``r`` smallest scaled energies as the total less the few largest when at most
16 are left out (always at n = 64), where the selection's unpredictable branches cost that much: rows 0-2
of both sets 47.9 -> 33.8 s (1.4x); the pair leaves as one vectorised, masked pass per row: 1.05-1.2x
(best of 3 on rows 0 and 2 of each set).

Tried and left off: a keep-side eigenvalue bound (``err(K)`` less the ``q`` largest ``g_t^2 / e_t`` over
``lambda_min``, the prune side's mirror, both scalings) closed no node and cost 1.3x the time; a max-trace
diagonal ``G >= diag(d)`` (the quantization search's, certified) as a third scaling has a trace 3-5x the
others' but cut the nodes of row 0 by 8 % (1,104,818 -> 1,017,442; weighting its trace by ``w0^2``, by the
OBS costs or by ``1 / diag(G^-1)`` did no better); exact triples as a masked pass with ``leaf_keep=3``:
1.7x the time (row 0).

At a time limit (``stop_bound="lagrange"``, the default) the gap comes from a Lagrangian bound of the
perspective relaxation (:mod:`pvq.layerwise._prune_dual`), its dual maximised at the root in the last
tenth of the time limit: the reported bound is the least, over the open nodes, of each node's own bound
raised by the Lagrangian node bound (and never below the Lagrangian root bound). ``stop_bound="open"``:
the least open node bound alone, the solver before that bound (on real rows, n = 64, 4 bits, 10 s, it
reports gaps of 86-98 %). ``bound="lagrange"`` also uses the Lagrangian node bound inside the search,
after ``arm_after`` seconds; it is off by default: on 18 synthetic rows (n = 40, 48; 2/4/8 bits) it
closed no node the default bounds did not, and its root ascent only cost time.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from pvq.layerwise._linalg import check_row, refit, safe_inverse
from pvq.layerwise._prune_dual import dual_node_bound, prune_dual
from pvq.layerwise._prune_kernels import FREE, KEPT, PRUNED, open_bound
from pvq.layerwise._prune_search import UNSET, SearchParams, SearchState, load_node, run_batch, search_threads
from pvq.layerwise._prune_swap import prune_swap
from pvq.layerwise._result import SolveResult, relative_gap, row_error

__all__ = ["prune_exact", "BOUNDS", "STOP_BOUNDS", "EIGEN"]

BOUNDS = ("eigen", "lagrange")
STOP_BOUNDS = ("lagrange", "open")
EIGEN = ("both", "diag")


def prune_exact(
    G: np.ndarray,
    w0: np.ndarray,
    k: int,
    time_limit: float | None = 60.0,
    warm_start: np.ndarray | None = None,
    rtol: float = 1e-9,
    batch_nodes: int | None = None,
    heuristic: bool = True,
    bound: str = "eigen",
    stop_bound: str = "lagrange",
    arm_after: float = 0.05,
    dual_seconds: float = 2.0,
    eigen: str = "both",
    keep_leaves: bool = True,
    spectral: int = 0,
    leaf_keep: int = 2,
    threads: int = 1,
) -> SolveResult:
    """Best ``k``-sparse ``w`` for ``||X(w - w0)||^2``; ``G = X^T X`` (n, n), ``w0`` (n,).

    ``time_limit`` in seconds (``None``: no limit) covers the whole call, the heuristic warm start
    included; ``warm_start`` an optional (n,) candidate ``w``. ``heuristic``: first run
    :func:`prune_swap` for an incumbent (a caller that already has its result passes it as
    ``warm_start`` and ``False``). ``rtol``: nodes whose bound is within this relative distance of the
    incumbent are closed. ``bound`` (one of :data:`BOUNDS`) and ``stop_bound`` (one of
    :data:`STOP_BOUNDS`): see the module docstring; ``arm_after``: with ``bound="lagrange"``, seconds of
    plain search before the Lagrangian bound is computed; ``dual_seconds``: at most this long maximising
    its root dual (in the search: also at most a fifth of the time left; at a time limit: its last tenth).
    ``eigen`` (one of :data:`EIGEN`): the diagonal scalings of the node eigenvalue bound, ``"both"``
    (``diag(G)`` and ``1 / diag(G^-1)``, the better of the two per node) or ``"diag"`` (``diag(G)`` only,
    the solver before; kept as the benchmark's reference). ``keep_leaves``: a node with at most
    ``leaf_keep`` (0-3) weights left to keep is solved exactly (:func:`pvq.layerwise._prune_kernels.keep_leaf`)
    instead of branched on (``False``: the solver before). ``spectral``: the node-local spectral bound (0
    off, 1 Frobenius / row-sum ``lambda_max``, 2 also certified power iteration). ``threads``: workers
    searching subtrees of this row with a shared incumbent (needs ``bound="eigen"``); the value is the
    same as with one thread, the support may differ among supports of equal error.
    """
    t0 = time.perf_counter()
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {BOUNDS}, got {bound!r}")
    if eigen not in EIGEN:
        raise ValueError(f"eigen must be one of {EIGEN}, got {eigen!r}")
    if stop_bound not in STOP_BOUNDS:
        raise ValueError(f"stop_bound must be one of {STOP_BOUNDS}, got {stop_bound!r}")
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if bound == "lagrange" and threads > 1:
        raise ValueError("bound='lagrange' (armed inside the search) needs threads=1")
    if leaf_keep not in (0, 1, 2, 3):
        raise ValueError(f"leaf_keep must be 0-3, got {leaf_keep}")
    if spectral not in (0, 1, 2):
        raise ValueError(f"spectral must be 0, 1 or 2, got {spectral}")
    G, w0 = check_row(G, w0)
    G = np.ascontiguousarray(G)
    w0 = np.ascontiguousarray(w0)
    n = w0.shape[0]
    k = int(k)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if k >= np.count_nonzero(w0):
        return SolveResult(0.0, 0.0, 0.0, time.perf_counter() - t0, "optimal", w0.copy())
    n_prune = n - k
    if batch_nodes is None:  # nodes per compiled call: about 10 ms of work between time-limit checks
        batch_nodes = max(50, int(2e6 / (n * n)))
    # incumbent: the best heuristic (and the caller's warm start)
    notes: tuple[str, ...] = ()
    best_w, best_v = np.zeros(n), row_error(G, w0, np.zeros(n))  # everything pruned: always feasible
    if heuristic:
        left = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - t0))
        heur = prune_swap(G, w0, k, time_limit=left)
        best_w, best_v, notes = heur.solution, heur.value, heur.notes
    if warm_start is not None:
        ws = np.asarray(warm_start, dtype=np.float64)
        if np.count_nonzero(ws) <= k:
            cand = refit(G, w0, ws != 0.0)
            if row_error(G, w0, cand) < best_v:
                best_w, best_v = cand, row_error(G, w0, cand)
    if k == 0:
        return SolveResult(best_v, best_v, 0.0, time.perf_counter() - t0, "optimal", best_w)
    Hinv, ridge = safe_inverse(G)
    notes += (f"ridge {ridge:.3g} added to G (singular)",) if ridge else ()
    Gr = G + ridge * np.eye(n) if ridge else G
    scal, lams = _eigen_scalings(Gr, Hinv, eigen)
    # exact leaves with at most leaf_keep weights left to keep (the reference branches on them instead)
    leafq = int(leaf_keep) if keep_leaves else 0
    T, tconst = np.zeros(n), -np.inf
    params = SearchParams(Gr, w0, Hinv, n_prune, scal, lams, rtol, T, tconst, int(spectral), leafq)
    UB = np.array([best_v * (1.0 + 1e-12) + 1e-300])
    found: list[np.ndarray] = []
    status = "optimal"
    dual = None
    # with the Lagrangian gap, its ascent takes the last tenth of the time limit
    stop_secs = (
        min(dual_seconds, 0.1 * time_limit) if time_limit is not None and stop_bound == "lagrange" else 0.0
    )
    search_limit = None if time_limit is None else time_limit - stop_secs
    open_states: list[SearchState] = []
    untaken: list[tuple[np.ndarray, float]] = []
    if threads > 1:
        deadline = None if search_limit is None else t0 + search_limit
        ts = search_threads(params, UB, threads, deadline, batch_nodes)
        status, found, nodes, open_states, untaken = ts.status, ts.found, ts.nodes, ts.stopped, ts.untaken
    else:
        st = SearchState(n, n_prune, leafq)
        load_node(st, np.zeros(n, dtype=np.int8), params, root=True)
        armed = bound != "lagrange"
        while True:
            run_batch(st, params, UB, batch_nodes)
            if st.ctl[2]:
                break
            now = time.perf_counter() - t0
            if search_limit is not None and now > search_limit:
                status = "time_limit"
                open_states = [st]
                break
            if not armed and now >= arm_after:
                armed = True
                left = dual_seconds if search_limit is None else 0.2 * (search_limit - now)
                dual = prune_dual(G, w0, k, float(UB[0]), seconds=min(dual_seconds, left))
                if dual is not None:
                    T, tconst = np.ascontiguousarray(dual.t), float(dual.const)
                    params = dataclasses.replace(params, T=T, tconst=tconst)
        nodes = int(st.ctl[3])
        if st.best_st[0] != UNSET:
            found = [st.best_st]
    if status == "time_limit" and stop_bound == "lagrange" and dual is None:
        # half the time kept for it; the other half: bounding the open nodes
        dual = prune_dual(G, w0, k, float(UB[0]), seconds=stop_secs / 2)
    if status == "time_limit" and stop_bound == "open":
        dual = None
    if dual is not None:
        notes += (f"Lagrangian root bound {dual.root:.6g} ({dual.iters} dual steps)",)
    for labels in found:
        keep = labels == KEPT
        keep |= (labels != PRUNED) & (labels != KEPT)  # unreached free entries count as kept
        cand = refit(G, w0, keep) if keep.sum() <= k else None
        if cand is not None and row_error(G, w0, cand) < best_v:
            best_w, best_v = cand, row_error(G, w0, cand)
    if status == "time_limit":
        lb = _open_lower_bound(open_states, untaken, float(UB[0]), n - n_prune, dual)
    else:
        lb = best_v
    lb = min(lb, best_v)
    gap = 0.0 if status == "optimal" else relative_gap(best_v, lb)
    return SolveResult(best_v, lb, gap, time.perf_counter() - t0, status, best_w, nodes=nodes, notes=notes)


def _eigen_scalings(G: np.ndarray, Hinv: np.ndarray, eigen: str) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal scalings ``e`` (m, n) of the node eigenvalue bound and ``lambda_min(e^-1/2 G e^-1/2)`` (m,):
    ``diag(G)``, and with ``eigen="both"`` also ``1 / diag(G^-1)`` (at the root this is the sum of the
    ``r`` cheapest OBS costs over ``lambda_max`` of the scaled ``G^-1``; at the root of 4 real rows,
    n = 64-96, 4 bits, it was 1.3-9x the ``diag(G)`` one)."""
    rows = [np.diag(G)]
    if eigen == "both":
        rows.append(1.0 / np.maximum(np.diag(Hinv), 1e-300))
    scal = np.ascontiguousarray(np.array(rows))
    lams = np.empty(len(rows))
    for q, e in enumerate(rows):
        s = 1.0 / np.sqrt(e)
        ev = np.linalg.eigvalsh(G * s[:, None] * s[None, :])
        lams[q] = max(0.0, float(ev[0]) - 1e-14 * float(ev[-1]))  # less eigvalsh's rounding error
    return scal, lams


def _open_lower_bound(states, untaken, UB: float, k: int, dual) -> float:
    """Global lower bound of a stopped search: the least bound over the open nodes (those with an
    unexplored child) of the interrupted searches ``states`` and over the ``(labels, bound)`` subtrees no
    search started, each raised by the Lagrangian node bound when there is one, and never below the
    Lagrangian root bound."""
    lb = UB
    for s in states:
        if dual is None:
            lb = min(lb, open_bound(s.BND, s.PH, s.ctl, UB))
            continue
        for i in range(int(s.ctl[0]) + 1):
            if s.PH[i] < 2:
                node = dual_node_bound(dual, s.ST[i] == KEPT, s.ST[i] == FREE, k - int(s.NK[i]))
                lb = min(lb, max(float(s.BND[i]), node))
    for labels, bnd in untaken:
        node = -np.inf
        if dual is not None:
            node = dual_node_bound(
                dual, labels == KEPT, labels == FREE, k - int(np.count_nonzero(labels == KEPT))
            )
        lb = min(lb, max(bnd, node))
    return max(lb, dual.root) if dual is not None and lb < UB else lb
