"""One row's exact quantization search on several threads: the tree split below its top levels.

Every choice of values for the levels decided first (``n - 1`` down to ``n - d``) roots a subtree; its
undecided levels ``0..n-d-1`` are the same box-constrained search with the target moved to their
continuous optimum given those values (``CH[n - d]`` of ``se_run``) and an offset (their partial
distance). The split goes down level by level until there are ``SUBTREES_PER_THREAD`` subtrees per thread
(or no level is left), dropping those whose offset plus the search's level bound reaches the radius. The
subtrees are handed out in order of offset to ``threads`` workers, each a compiled :func:`se_drive` that
releases the GIL. The incumbent *radius* is shared (read and lowered under a lock between batches of
nodes); every worker keeps its own best point, and the answer is the least of them, so the optimum value
does not depend on the timing (only which of several equal-valued points is returned could). The
oracle's verdicts are pooled between batches, so that once it has failed often enough it is off for every
worker, as in one search.

At a time limit the bound is the least of: for every subtree not started, its offset plus the search's
level bound on its undecided levels (:func:`_start_bounds`), and for every subtree under way its offset
plus its own open bound (partial distances raised by the same level bound, as the one-thread search
reports without its Lagrangian part).

Measured on the 8 MobileNetV2 ``features.8.conv.0.0`` whole rows (n = 64, 4 bits, Chang & Han's order,
quiet 2-core machine, 2 threads): split below the top two levels only (8-26 subtrees), the subtree of least
offset held 54-84 % of the nodes and the other core mostly idled (17.5M nodes per second on two threads
against 14M on one: median 1.75 s per row against 2.16 s); split to 128 subtrees, 29.6M nodes per second
and a median of 1.24 s; with the oracle pooled, 2-3M fewer nodes per row (the same time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pvq.layerwise._quant_kernels import se_drive
from pvq.layerwise._quant_open import open_bound_dual

__all__ = ["SplitOutcome", "split_search"]

SUBTREES_PER_THREAD = 64  # the split goes down until there are this many subtrees per thread


@dataclass(frozen=True)
class SplitOutcome:
    """``best_d``: least distance found (integer units, ``inf`` if none below the start radius);
    ``best_z`` (n,) its integers (search order; ``None`` with ``inf``); ``done``: the whole tree was
    searched; ``lower``: a lower bound on the optimum (``best_d`` when done, the open-subtree bound
    otherwise; the start radius is not included); ``nodes``/``oracle_nodes``: candidates scored;
    ``helped``/``failed``: oracle calls that closed a node / did not."""

    best_d: float
    best_z: np.ndarray | None
    done: bool
    lower: float
    nodes: int
    oracle_nodes: int
    helped: int
    failed: int


def _frontier(R, CH, V, Dk, P1, lo, hi, radius, want, max_depth):
    """The subtrees below the top ``d`` levels of the search order, for the least ``d <= max_depth``
    that gives at least ``want`` of them (fewer when the tree is that narrow): a list of (offset, values
    of levels ``n - 1 .. n - d``, target (n - d,)) with offset + the level bound below ``radius``, least
    offset first. The target is the continuous optimum of the undecided levels given the values
    (``CH[n - d]`` of ``se_run``)."""
    n = R.shape[0]
    front = [(0.0, (), np.ascontiguousarray(CH[n, :n]))]
    values = np.arange(lo, hi + 1.0)
    depth = 0
    while front and depth < max_depth and len(front) < want:
        k = n - 1 - depth  # the level decided next
        nxt = []
        for off, vals, t in front:
            step = values - t[k]
            d = off + (R[k, k] * step) ** 2
            ok = d < radius
            if not ok.any():
                continue
            step, d = step[ok], d[ok]
            kids = t[None, :k] + step[:, None] * V[None, k, :k]  # CH[k] for each value
            if k > 0:
                ok = d + _start_bounds(kids, Dk[k, :k], P1[k, :k], lo, hi) < radius
                step, d, kids = step[ok], d[ok], kids[ok]
            nxt += [(float(di), (*vals, float(si + t[k])), np.ascontiguousarray(kid))
                    for di, si, kid in zip(d, step, kids, strict=True)]  # fmt: skip
        front = nxt
        depth += 1
    front.sort(key=lambda s: s[0])
    return front, depth


def _start_bounds(targets: np.ndarray, dk: np.ndarray, p1: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Lower bounds on subtrees not started: their undecided levels have the continuous optima
    ``targets`` (s, m); with ``e_i`` the distance of a target to the nearest in-box integer, their cost is
    at least ``sum_i dk_i e_i^2`` and ``max_i p1_i e_i^2`` (the search's own level bound, ``_fix_lb`` of
    :mod:`pvq.layerwise._quant_kernels`, with ``dk = Dk[m]``, ``p1 = P1[m]``). Returns (s,)."""
    e = targets - np.clip(
        np.floor(targets + 0.5), lo, hi
    )  # as in _fix_lb: the rounded value clamped to the box
    e2 = e * e
    return np.maximum((e2 * dk).sum(axis=-1), (e2 * p1).max(axis=-1, initial=0.0))


def _pool_oracle(orc: np.ndarray, seen: np.ndarray, shared: dict) -> None:
    """Merge one worker's oracle verdicts since its last merge (``orc[4:6]`` above ``seen``, the pooled
    counts it was last given) into ``shared``, and give it back the pooled counts and switches: the
    oracle is off (``orc[0] = 0``) once any worker turned it off, and its highest level (``orc[2]``) is
    the least any worker set. Called under the lock."""
    shared["helped"] += int(orc[4] - seen[0])
    shared["failed"] += int(orc[5] - seen[1])
    shared["on"] = min(shared["on"], int(orc[0]))
    shared["kmax"] = min(shared["kmax"], int(orc[2]))
    orc[0], orc[2], orc[4], orc[5] = shared["on"], shared["kmax"], shared["helped"], shared["failed"]
    seen[:] = orc[4:6]


def split_search(
    R: np.ndarray,
    c: np.ndarray,
    lo: float,
    hi: float,
    tables: tuple[np.ndarray, ...],
    radius: float,
    threads: int,
    batch_nodes: int,
    orc0: np.ndarray,
    lattice: Callable[[], tuple[np.ndarray, ...]],
    deadline: float | None,
) -> SplitOutcome:
    """Search ``min ||R (z - c)||^2 < radius`` over the integer box with ``threads`` workers (see the
    module docstring). ``R`` (n, n) upper triangular, n >= 3; ``tables`` = ``(CH, V, Dk, P1)`` of
    ``level_tables``; ``orc0``: the oracle settings each worker starts from (copied);
    ``lattice()``: fresh oracle tables for one worker; ``deadline``: ``time.perf_counter()`` value or None.
    """
    n = R.shape[0]
    CH, V, Dk, P1 = tables
    subs, depth = _frontier(R, CH, V, Dk, P1, lo, hi, radius, SUBTREES_PER_THREAD * threads, n - 1)
    m = n - depth
    Rs = np.ascontiguousarray(R[:m, :m])
    Vs = np.ascontiguousarray(V[: m + 1, :m])
    Ds = np.ascontiguousarray(Dk[: m + 1, :m])
    Ps = np.ascontiguousarray(P1[: m + 1, :m])
    lock = threading.Lock()
    shared = {
        "radius": float(radius), "next": 0, "nodes": 0, "onodes": 0, "helped": int(orc0[4]),
        "failed": int(orc0[5]), "on": int(orc0[0]), "kmax": int(orc0[2]),
    }  # fmt: skip
    bests: list[tuple[float, np.ndarray]] = []
    open_lb: list[float] = []  # bounds of subtrees left unfinished at the deadline

    def worker() -> None:
        lat = lattice()
        z = np.zeros(m)
        center = np.zeros(m)
        dd = np.zeros(m + 1)
        up = np.zeros(m)
        dn = np.zeros(m)
        sig = np.zeros((m, m + 1))
        bz = np.zeros(m)
        bd = np.zeros(1)
        # the oracle's settings: one copy per worker, its verdicts pooled between batches, so that the workers
        # pay for the oracle's failures once between them (as one search does), not once each
        orc = orc0.copy()
        seen = orc[4:6].copy()
        while True:
            with lock:
                i = shared["next"]
                shared["next"] += 1
                rad = shared["radius"]
            if i >= len(subs):
                break
            off, vals, target = subs[i]
            if off >= rad:
                continue  # pruned by the shared radius
            if deadline is not None and time.perf_counter() > deadline:
                lb = float(_start_bounds(target, Ds[m], Ps[m], lo, hi))
                with lock:
                    open_lb.append(off + lb)
                continue
            CHs = np.zeros((m + 1, m))
            CHs[m] = target
            ctl = np.zeros(7, dtype=np.int64)
            stale = np.full(m, m - 1, dtype=np.int64)
            rs = np.full(m, m - 1, dtype=np.int64)
            sig[:] = 0.0
            bd[0] = rad - off
            while True:
                before = bd[0]
                se_drive(
                    Rs, target, lo, hi, bz, bd, z, center, dd, up, dn, ctl, batch_nodes, sig, stale, rs, CHs,
                    Vs, Ds, Ps, orc, lat,
                )  # fmt: skip
                with lock:
                    _pool_oracle(orc, seen, shared)
                    if bd[0] < before:  # a better point in this subtree
                        full = np.concatenate((bz, vals[::-1]))
                        bests.append((off + float(bd[0]), full))
                        shared["radius"] = min(shared["radius"], off + float(bd[0]))
                    bd[0] = min(bd[0], shared["radius"] - off)  # another worker's radius
                if ctl[2]:
                    break
                if deadline is not None and time.perf_counter() > deadline:
                    lb = open_bound_dual(
                        Rs, z, center, dd, up, dn, lo, hi, ctl, float(bd[0]), None, (CHs, Vs, Ds, Ps)
                    )
                    with lock:
                        open_lb.append(off + lb)
                    break
            with lock:
                shared["nodes"] += int(ctl[3])
                shared["onodes"] += int(ctl[6])

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(max(1, threads))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if bests:
        best_d, best_z = min(bests, key=lambda b: b[0])
    else:
        best_d, best_z = float("inf"), None
    done = not open_lb
    lower = min([best_d, *open_lb]) if open_lb else best_d
    return SplitOutcome(
        float(best_d), best_z, done, float(lower), shared["nodes"], shared["onodes"], shared["helped"],
        shared["failed"],
    )  # fmt: skip
