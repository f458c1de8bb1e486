"""Model-level recommendation: a mixed choice of option per tensor under a total size budget.

A multiple-choice knapsack: each tensor i (n_i weights) takes exactly one option j with cost
``n_i * bits_ij`` and error ``e_ij``; minimise ``sum_i e_ij`` subject to ``sum_i n_i bits_ij <= B``.
The error of a tensor is its relative error (noise-to-signal power, ``10^(-SNR/10)``): every layer is
taken as equally sensitive, since no end-to-end sensitivity is measured here. Solved exactly as a 0/1
integer program (``scipy.optimize.milp``, HiGHS branch-and-cut) over each tensor's Pareto-optimal
options, warm-checked against the classic greedy on the lower convex hulls (optimal for the LP
relaxation, within one upgrade of the integer optimum). The result says whether HiGHS proved optimality
(``certified``) and, at its time limit, the relative gap it reports. Because every uniform baseline is a
feasible point of the same program, a certified plan is never worse than any uniform one in this
objective.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pvq.compare._options import Option

__all__ = ["Allocation", "allocate", "uniform_allocation", "parse_budget", "lower_hull", "pareto_options"]


@dataclass(frozen=True)
class Allocation:
    """The chosen option per tensor. ``avg_bits`` = total bits / total weights; ``snr_db`` the model's
    mean-relative-error SNR ``-10 log10(mean_i e_i)``; ``budget_bits`` the average bits/weight allowed.
    ``certified``: the choice is proven optimal for its objective (uniform baselines: by construction per
    tensor); ``gap``: the solver's relative optimality gap when it stopped at its time limit."""

    budget_bits: float
    choices: dict[str, Option]
    sizes: dict[str, int]
    label: str = "mixed"
    certified: bool = True
    gap: float = 0.0

    @property
    def total_bits(self) -> float:
        return sum(self.sizes[n] * o.bits_per_weight for n, o in self.choices.items())

    @property
    def avg_bits(self) -> float:
        n = sum(self.sizes[k] for k in self.choices)
        return self.total_bits / n if n else 0.0

    @property
    def mean_rel_error(self) -> float:
        return sum(o.rel_error for o in self.choices.values()) / max(len(self.choices), 1)

    @property
    def snr_db(self) -> float:
        e = self.mean_rel_error
        return math.inf if e <= 0 else -10 * math.log10(e)

    def family_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.choices.values():
            out[o.family] = out.get(o.family, 0) + 1
        return dict(sorted(out.items()))

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "name": n,
                "numel": self.sizes[n],
                **o.to_json(),
                "budget_bits": self.budget_bits,
                "allocation": self.label,
            }
            for n, o in self.choices.items()
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "allocation": self.label,
            "budget_bits": self.budget_bits,
            "avg_bits": self.avg_bits,
            "snr_db": self.snr_db,
            "families": self.family_counts(),
            "certified": self.certified,
            "gap": self.gap,
        }


def parse_budget(text: str, total_weights: int) -> float:
    """``--budget``: average bits per weight (``4``, ``4.5``), a fraction of the FP16 size (``25%``),
    or an absolute size (``1.5MB``, ``800kB``, bytes = 10^3 multiples). Returns bits per weight."""
    t = str(text).strip().lower().replace(" ", "")
    units = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "b": 1.0}
    try:
        if t.endswith("%"):
            bits = 16.0 * float(t[:-1]) / 100.0
        else:
            for u, mult in units.items():
                if t.endswith(u) and t[: -len(u)].replace(".", "", 1).isdigit():
                    bits = float(t[: -len(u)]) * mult * 8.0 / max(total_weights, 1)
                    break
            else:
                bits = float(t)
    except ValueError:
        raise ValueError(
            f"--budget: cannot parse '{text}' (bits/weight like 4, a share of FP16 like 25%, or a size like 1.5MB)"
        ) from None
    if not (math.isfinite(bits) and 0 < bits <= 16):
        raise ValueError(f"--budget: '{text}' is {bits:.3g} bits per weight; must be in (0, 16]")
    return bits


def lower_hull(options: Sequence[Option]) -> list[Option]:
    """Options on the lower convex hull of (bits, relative error), cheapest first; dominated ones dropped."""
    pts = sorted(
        (o for o in options if not math.isnan(o.rel_error)),
        key=lambda o: (o.bits_per_weight, o.rel_error),
    )
    pareto: list[Option] = []
    for o in pts:  # strictly decreasing error as cost grows
        if not pareto or o.rel_error < pareto[-1].rel_error:
            if pareto and o.bits_per_weight == pareto[-1].bits_per_weight:
                pareto[-1] = o
            else:
                pareto.append(o)
    hull: list[Option] = []
    for o in pareto:
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b is above the segment a-o: drop it (cross product test in (cost, err))
            cross = (b.bits_per_weight - a.bits_per_weight) * (o.rel_error - a.rel_error) - (
                b.rel_error - a.rel_error
            ) * (o.bits_per_weight - a.bits_per_weight)
            if cross <= 0:
                hull.pop()
            else:
                break
        hull.append(o)
    return hull


def pareto_options(options: Sequence[Option]) -> list[Option]:
    """Options no other option beats in both cost and error (finite errors only), cheapest first. Dropping
    the others cannot change the knapsack optimum: a dominated choice can always be swapped for its
    dominator."""
    pts = sorted(
        (o for o in options if math.isfinite(o.rel_error)), key=lambda o: (o.bits_per_weight, o.rel_error)
    )
    out: list[Option] = []
    for o in pts:
        if not out or o.rel_error < out[-1].rel_error:
            out.append(o)
    return out


def allocate(
    options: Mapping[str, Sequence[Option]],
    sizes: Mapping[str, int],
    budget_bits: float,
    label: str = "mixed",
    time_limit_s: float = 20.0,
) -> Allocation:
    """Exact multiple-choice knapsack (see module doc): minimise the mean relative error subject to the
    average bits per weight ``budget_bits`` over all tensors. Raises ``ValueError`` when even the cheapest
    options do not fit. At ``time_limit_s`` the best of HiGHS's incumbent and the greedy is returned with
    ``certified=False`` and the gap HiGHS reports."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    greedy = _greedy(options, sizes, budget_bits, label)
    names = list(greedy.choices)
    cands = {n: pareto_options(options[n]) for n in names}
    total_w = float(sum(int(sizes[n]) for n in names))
    cost, err, rows_i, cols_i, owner = [], [], [], [], []
    for i, n in enumerate(names):
        for o in cands[n]:
            rows_i.append(i)
            cols_i.append(len(cost))
            owner.append((n, o))
            cost.append(sizes[n] * o.bits_per_weight / total_w)  # share of the average bits per weight
            err.append(o.rel_error)
    k = len(cost)
    one_each = coo_matrix((np.ones(k), (rows_i, cols_i)), shape=(len(names), k))
    budget = LinearConstraint(np.asarray(cost)[None, :], -np.inf, budget_bits * (1 + 1e-12))
    res = milp(
        np.asarray(err),
        constraints=[LinearConstraint(one_each, 1.0, 1.0), budget],
        integrality=np.ones(k),
        bounds=Bounds(0.0, 1.0),
        options={"time_limit": float(time_limit_s), "mip_rel_gap": 0.0},
    )
    if res.x is None:  # no incumbent within the limit: the greedy stands, uncertified
        return Allocation(budget_bits, greedy.choices, greedy.sizes, label, certified=False, gap=math.nan)
    pick = {owner[j][0]: owner[j][1] for j in np.flatnonzero(res.x > 0.5)}
    exact = Allocation(budget_bits, {n: pick[n] for n in names}, greedy.sizes, label)
    certified = bool(res.status == 0)
    gap = 0.0 if certified else float(getattr(res, "mip_gap", math.nan))
    best = exact if exact.mean_rel_error <= greedy.mean_rel_error else greedy
    return Allocation(budget_bits, best.choices, best.sizes, label, certified=certified, gap=gap)


def _greedy(
    options: Mapping[str, Sequence[Option]],
    sizes: Mapping[str, int],
    budget_bits: float,
    label: str = "mixed",
) -> Allocation:
    """Greedy multiple-choice knapsack on the lower convex hulls, then single upgrades with the leftover
    (the former allocator; now the fallback and a check). Raises ``ValueError`` when even the cheapest
    options do not fit."""
    names = [n for n in options if options[n]]
    total_w = sum(int(sizes[n]) for n in names)
    cap = budget_bits * total_w
    hulls = {n: lower_hull(options[n]) for n in names}
    pos = dict.fromkeys(names, 0)
    used = sum(sizes[n] * hulls[n][0].bits_per_weight for n in names)
    if used > cap * (1 + 1e-12):
        raise ValueError(
            f"--budget: {budget_bits:.3g} bits/weight is below the cheapest mix ({used / total_w:.3g} bits/weight)"
        )

    def push(heap: list[tuple[float, str]], n: str) -> None:
        h, i = hulls[n], pos[n]
        if i + 1 < len(h):
            d_cost = sizes[n] * (h[i + 1].bits_per_weight - h[i].bits_per_weight)
            d_err = h[i].rel_error - h[i + 1].rel_error
            heapq.heappush(heap, (-(d_err / d_cost) if d_cost > 0 else -math.inf, n))

    heap: list[tuple[float, str]] = []
    for n in names:
        push(heap, n)
    while heap:
        _, n = heapq.heappop(heap)
        h, i = hulls[n], pos[n]
        d_cost = sizes[n] * (h[i + 1].bits_per_weight - h[i].bits_per_weight)
        if used + d_cost <= cap * (1 + 1e-12):
            used += d_cost
            pos[n] = i + 1
            push(heap, n)
    # leftover: best single jump (to any cheaper-than-budget option of any tensor), repeated
    choices = {n: hulls[n][pos[n]] for n in names}
    improved = True
    while improved:
        improved = False
        best: tuple[float, str, Option] | None = None
        for n in names:
            cur = choices[n]
            for o in options[n]:
                d_cost = sizes[n] * (o.bits_per_weight - cur.bits_per_weight)
                gain = cur.rel_error - o.rel_error
                if gain > 0 and used + d_cost <= cap * (1 + 1e-12) and (best is None or gain > best[0]):
                    best = (gain, n, o)
        if best is not None:
            _, n, o = best
            used += sizes[n] * (o.bits_per_weight - choices[n].bits_per_weight)
            choices[n] = o
            improved = True
    return Allocation(budget_bits, choices, {n: int(sizes[n]) for n in names}, label, certified=False, gap=math.nan)


def uniform_allocation(
    options: Mapping[str, Sequence[Option]], sizes: Mapping[str, int], family: str, budget_bits: float
) -> Allocation | None:
    """Every tensor takes the best option of one ``family`` within ``budget_bits`` bits per weight
    (the uniform baselines: all INT-b, all pruned). ``None`` when some tensor has no such option."""
    choices: dict[str, Option] = {}
    for n, opts in options.items():
        fits = [o for o in opts if o.family == family and o.bits_per_weight <= budget_bits + 1e-9]
        if not fits:
            return None
        choices[n] = max(fits, key=lambda o: (o.snr_db, -o.bits_per_weight))
    return Allocation(budget_bits, choices, {n: int(sizes[n]) for n in options}, f"all {family}")
