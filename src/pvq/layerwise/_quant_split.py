"""One row's exact quantization search on several threads: the tree split below its top two levels.

Every pair of values of the two levels decided first (``n - 1`` and ``n - 2`` of the search order)
roots a subtree; its undecided levels ``0..n-3`` are the same box-constrained search with the target
moved to their continuous optimum given the pair (``CH[n - 2]`` of ``se_run``) and an offset (the
pair's partial distance). The subtrees are handed out in order of that offset to ``threads`` workers,
each a compiled :func:`se_drive` that releases the GIL. The incumbent *radius* is shared (read and
lowered under a lock between batches of nodes); every worker keeps its own best point, and the answer
is the least of them, so the optimum value does not depend on the timing (only which of several
equal-valued points is returned could).

At a time limit the bound is the least of: for every subtree not started, its offset plus the search's
level bound on its undecided levels (:func:`_start_bound`), and for every subtree under way its offset
plus its own open bound (partial distances raised by the same level bound, as the one-thread search
reports without its Lagrangian part).

Measured on MobileNetV2 ``features.8.conv.0.0`` whole rows (n = 64, 4 bits) with 2 threads on a 2-core
machine whose other core was busy with another job: 1.02-1.26x the nodes of one thread (the split loses
some pruning and each worker pays its own oracle budget), wall time 0.77 s against 1.01 s and 0.91 s
against 0.89 s (2 rows). The speed-up on free cores was not measured.
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


def _subtrees(R, c, CH, V, lo, hi, radius):
    """(offset, top two values, target (n - 2,)) of every pair below ``radius``, least offset first."""
    n = R.shape[0]
    out = []
    for v1 in np.arange(lo, hi + 1.0):
        t1 = R[n - 1, n - 1] * (v1 - c[n - 1])
        d1 = t1 * t1
        if d1 >= radius:
            continue
        ch1 = CH[n, : n - 1] + (v1 - c[n - 1]) * V[n - 1, : n - 1]  # CH[n - 1] given z_{n-1} = v1
        for v2 in np.arange(lo, hi + 1.0):
            t2 = R[n - 2, n - 2] * (v2 - ch1[n - 2])
            d2 = d1 + t2 * t2
            if d2 >= radius:
                continue
            ch2 = ch1[: n - 2] + (v2 - ch1[n - 2]) * V[n - 2, : n - 2]
            out.append((float(d2), float(v1), float(v2), np.ascontiguousarray(ch2)))
    out.sort(key=lambda s: s[0])
    return out


def _start_bound(target: np.ndarray, dk: np.ndarray, p1: np.ndarray, lo: float, hi: float) -> float:
    """A lower bound on a subtree not started: its undecided levels have the continuous optimum
    ``target`` (m,); with ``e_i`` its distance to the nearest in-box integer, their cost is at least
    ``sum_i dk_i e_i^2`` and ``max_i p1_i e_i^2`` (the search's own level bound, ``_fix_lb`` of
    :mod:`pvq.layerwise._quant_kernels`, with ``dk = Dk[m]``, ``p1 = P1[m]``)."""
    e = np.where(
        target <= lo, lo - target, np.where(target >= hi, target - hi, target - np.floor(target + 0.5))
    )
    e2 = e * e
    return float(max((dk * e2).sum(), (p1 * e2).max(initial=0.0)))


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
    m = n - 2
    CH, V, Dk, P1 = tables
    Rs = np.ascontiguousarray(R[:m, :m])
    Vs = np.ascontiguousarray(V[: m + 1, :m])
    Ds = np.ascontiguousarray(Dk[: m + 1, :m])
    Ps = np.ascontiguousarray(P1[: m + 1, :m])
    subs = _subtrees(R, c, CH, V, lo, hi, radius)
    lock = threading.Lock()
    shared = {"radius": float(radius), "next": 0, "nodes": 0, "onodes": 0, "helped": 0, "failed": 0}
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
        orc = orc0.copy()  # one per worker: an oracle switched off in one subtree stays off in the next
        while True:
            with lock:
                i = shared["next"]
                shared["next"] += 1
                rad = shared["radius"]
            if i >= len(subs):
                break
            off, v1, v2, target = subs[i]
            if off >= rad:
                continue  # pruned by the shared radius
            if deadline is not None and time.perf_counter() > deadline:
                lb = _start_bound(target, Ds[m], Ps[m], lo, hi)
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
                    if bd[0] < before:  # a better point in this subtree
                        full = np.concatenate((bz, [v2, v1]))
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
        with lock:
            shared["helped"] += int(orc[4])
            shared["failed"] += int(orc[5])

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
