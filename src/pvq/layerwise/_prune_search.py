"""The search state of the pruning branch-and-bound, and its subtrees searched by threads on one row.

:class:`SearchState` holds the per-depth arrays of :func:`pvq.layerwise._prune_kernels.bnb_run`;
:func:`load_node` puts any node (a pruned / kept / free labelling) into its slot 0, so that a subtree can
be searched on its own. :func:`search_threads` expands the top of the tree into subtrees (depth-first
order, keep child first) and lets ``threads`` workers take them in that order, each a compiled search
(``nogil``) with its own state, all sharing one incumbent value: a value written by one worker closes
nodes in the others. Every closed node had a bound at least some found support's error, so the result
stays exact; a worker that improves the incumbent keeps its own best support, and the driver refits them
all and takes the best, so the value returned does not depend on the threads' timing (the support can,
among supports of equal error).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from pvq.layerwise._prune_kernels import KEPT, PRUNED, bnb_run

__all__ = ["SearchState", "SearchParams", "load_node", "run_batch", "search_threads", "UNSET"]

UNSET = 3  # best_st label before a worker has found a support


@dataclass(frozen=True)
class SearchParams:
    """The fixed inputs of a search: ``Gr`` (n, n) the (ridged) Gram matrix, ``w0`` (n,), ``Hinv = Gr^-1``,
    ``n_prune`` weights to prune, the eigenvalue bound's ``scal`` (m, n) and ``lams`` (m,), ``rtol``,
    the Lagrangian node bound ``T`` (n,) / ``tconst``, ``spectral`` (0, 1, 2) and ``leafq`` (0-3)."""

    Gr: np.ndarray
    w0: np.ndarray
    Hinv: np.ndarray
    n_prune: int
    scal: np.ndarray
    lams: np.ndarray
    rtol: float
    T: np.ndarray
    tconst: float
    spectral: int
    leafq: int
    bk: np.ndarray = field(init=False)
    totk: float = field(init=False)

    def __post_init__(self) -> None:
        bk = self.Gr @ self.w0
        object.__setattr__(self, "bk", bk)
        object.__setattr__(self, "totk", float(self.w0 @ bk))


class SearchState:
    """One depth-first search's arrays (slot per depth, except ``W``, ``HH``: per number pruned, and
    ``SS``, ``SG``: per number kept; see ``bnb_run``); ``best_st`` its best support's labels (``UNSET``
    until it finds one)."""

    def __init__(self, n: int, n_prune: int, leafq: int, stats: bool = False) -> None:
        d = n + 2
        h = n_prune + 2  # w and H: slot NP (prune children), see bnb_run
        self.W = np.zeros((h, n))
        self.HH = np.zeros((h, n, n))
        self.ST = np.zeros((d, n), dtype=np.int8)
        self.ERR = np.zeros(d)
        self.NP = np.zeros(d, dtype=np.int64)
        self.NK = np.zeros(d, dtype=np.int64)
        self.BND = np.zeros(d)
        self.BJ = np.zeros(d, dtype=np.int64)
        self.PH = np.zeros(d, dtype=np.int64)
        self.HP = np.zeros(d, dtype=np.int64)
        # keep-side state of the exact leaves: Schur complement of the free set given the kept set, residual
        # correlations, err(kept set), the slot holding a depth's state, and whether it is sound
        kk = n - n_prune + 2  # slot NK (keep children)
        self.SS = np.zeros((kk, n, n)) if leafq else np.zeros((1, 1, 1))
        self.SG = np.zeros((kk, n)) if leafq else np.zeros((1, 1))
        self.EK = np.zeros(d)
        self.SP = np.zeros(d, dtype=np.int64)
        self.SV = np.zeros(d, dtype=np.int8)
        self.ctl = np.zeros(44 if stats else 4, dtype=np.int64)
        self.best_st = np.full(n, UNSET, dtype=np.int8)


def load_node(s: SearchState, st: np.ndarray, p: SearchParams, root: bool = False) -> None:
    """Put the node labelled ``st`` (n,) into slot 0 of ``s`` and reset its search (``ctl``): ``w`` the
    least-squares optimum on the unpruned set ``R``, ``H = Gr_RR^-1`` embedded, ``ERR = err(R)``, and the
    keep-side state from the kept set ``K``. ``root``: ``st`` is all free (``Hinv`` is used as it is)."""
    n = st.shape[0]
    s.ST[0] = st
    s.NP[0] = int(np.count_nonzero(st == PRUNED))
    s.NK[0] = int(np.count_nonzero(st == KEPT))
    s.HP[0] = 0
    s.SP[0] = 0
    s.ctl[:] = 0
    if root:
        s.W[0] = p.w0
        s.HH[0] = p.Hinv
        s.ERR[0] = 0.0
    else:
        R = np.flatnonzero(st != PRUNED)
        Hr = np.linalg.inv(p.Gr[np.ix_(R, R)])
        s.HH[0] = 0.0
        s.HH[0][np.ix_(R, R)] = Hr
        w = np.zeros(n)
        w[R] = Hr @ p.bk[R]
        s.W[0] = w
        s.ERR[0] = max(p.totk - float(p.bk[R] @ w[R]), 0.0)
    s.SV[0] = 0
    if p.leafq:
        K = np.flatnonzero(st == KEPT)
        if K.size == 0:
            s.SS[0] = p.Gr
            s.SG[0] = p.bk
            s.EK[0] = p.totk
            s.SV[0] = 1
        else:
            try:
                C = np.linalg.solve(p.Gr[np.ix_(K, K)], np.column_stack([p.Gr[K, :], p.bk[K]]))
            except np.linalg.LinAlgError:
                return
            s.SS[0] = p.Gr - p.Gr[:, K] @ C[:, :n]
            s.SG[0] = p.bk - p.Gr[:, K] @ C[:, n]
            s.EK[0] = p.totk - float(p.bk[K] @ C[:, n])
            s.SV[0] = 1


def run_batch(s: SearchState, p: SearchParams, UB: np.ndarray, max_nodes: int) -> None:
    """Up to ``max_nodes`` node evaluations of the search in ``s`` (compiled; releases the GIL)."""
    bnb_run(
        s.W, s.HH, s.ST, s.ERR, s.NP, s.NK, s.BND, s.BJ, s.PH, s.HP, s.ctl, p.n_prune, p.scal, p.lams, UB,
        s.best_st, max_nodes, p.rtol, p.T, p.tconst, s.SS, s.SG, s.EK, s.SP, s.SV, p.spectral, p.leafq,
    )  # fmt: skip


@dataclass
class ThreadedSearch:
    """What :func:`search_threads` leaves: ``status`` (``optimal`` / ``time_limit``), the supports found
    (``best_st`` label arrays), node evaluations, and for a stopped search the open work: ``stopped``
    (states of the workers' interrupted subtrees) and ``untaken`` (``(labels, bound)`` of subtrees no worker
    started)."""

    status: str
    found: list[np.ndarray]
    nodes: int
    stopped: list[SearchState]
    untaken: list[tuple[np.ndarray, float]]


def _expand(p: SearchParams, UB: np.ndarray, target: int, max_depth: int, found: list) -> tuple[list, int]:
    """The open nodes of the tree's top levels, in depth-first order (keep child first), replaced by their
    children level by level until there are at least ``target`` or ``max_depth`` levels: ``[(labels,
    bound)]`` and the node evaluations spent. Closed nodes (leaves, bound cuts) may improve ``UB``."""
    n = p.w0.shape[0]
    ev = SearchState(n, p.n_prune, p.leafq)
    nodes = 0

    def evaluate(st: np.ndarray, root: bool = False):
        nonlocal nodes
        load_node(ev, st, p, root=root)
        ev.best_st[:] = UNSET
        run_batch(ev, p, UB, 0)
        nodes += 1
        if ev.best_st[0] != UNSET:
            found.append(ev.best_st.copy())
        return None if ev.ctl[2] else (st, float(ev.BND[0]), int(ev.BJ[0]))

    root = evaluate(np.zeros(n, dtype=np.int8), root=True)
    level = [root] if root is not None else []
    for _ in range(max_depth):
        if not level or len(level) >= target:
            break
        nxt = []
        for st, _bnd, j in level:
            for lab in (KEPT, PRUNED):
                c = st.copy()
                c[j] = lab
                e = evaluate(c)
                if e is not None:
                    nxt.append(e)
        level = nxt
    return [(st, bnd) for st, bnd, _ in level], nodes


def _donate(s: SearchState) -> tuple[np.ndarray, float] | None:
    """Hand over the shallowest pending prune child of the interrupted search ``s`` (an ancestor of its
    current node whose keep child is under way): ``(labels, bound)`` of the child, marked done in ``s``."""
    for i in range(int(s.ctl[0])):
        if s.PH[i] == 1:
            labels = s.ST[i].copy()
            labels[int(s.BJ[i])] = PRUNED
            s.PH[i] = 2
            return labels, float(s.BND[i])
    return None


def search_threads(
    p: SearchParams, UB: np.ndarray, threads: int, deadline: float | None, batch_nodes: int
) -> ThreadedSearch:
    """Search the tree with ``threads`` workers sharing the incumbent value ``UB`` (1,) (updated in place);
    ``deadline``: a ``time.perf_counter()`` value or None. Work sharing: a worker with nothing to do
    says so, and a busy one, between two batches, hands it its shallowest pending subtree."""
    found: list[np.ndarray] = []
    tasks, nodes = _expand(p, UB, target=4 * threads, max_depth=12, found=found)
    tasks.reverse()  # a stack: pop() takes them in depth-first order
    n = p.w0.shape[0]
    lock = threading.Lock()
    idle = [0]
    errors: list[BaseException] = []
    out: dict[str, list] = {"stopped": [], "found": [], "nodes": []}

    def late() -> bool:
        return deadline is not None and time.perf_counter() > deadline

    def worker() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised by the caller: a lost subtree must not pass as searched
            with lock:
                errors.append(exc)
                idle[0] = -(10**9)  # nobody waits for work sharing any more

    def work() -> None:
        s = SearchState(n, p.n_prune, p.leafq)
        count = 0
        waiting = False
        while True:
            with lock:
                task = tasks.pop() if tasks else None
                if task is not None and waiting:
                    idle[0] -= 1
                    waiting = False
                elif task is None and not waiting:
                    idle[0] += 1
                    waiting = True
                done = task is None and idle[0] == threads
            if task is None:
                if done or late() or errors:
                    break
                time.sleep(2e-4)
                continue
            load_node(s, task[0], p)
            while True:
                run_batch(s, p, UB, batch_nodes)
                if s.ctl[2] or late() or errors:
                    break
                if idle[0] > 0 and not tasks:
                    with lock:
                        gift = _donate(s)
                        if gift is not None:
                            tasks.append(gift)
            count += int(s.ctl[3])
            if not s.ctl[2]:
                with lock:
                    out["stopped"].append(s)
                s = SearchState(n, p.n_prune, p.leafq)
                break
        with lock:
            out["nodes"].append(count)
            if s.best_st[0] != UNSET:
                out["found"].append(s.best_st.copy())

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    untaken = list(reversed(tasks))
    stopped = out["stopped"]
    found += out["found"] + [s.best_st.copy() for s in stopped if s.best_st[0] != UNSET]
    status = "time_limit" if stopped or untaken else "optimal"
    return ThreadedSearch(status, found, nodes + sum(out["nodes"]), stopped, untaken)
