"""The verdict logic of pvq compare, on synthetic rows (pure, no model needed)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from pvq.compare import (
    Option,
    allocate,
    bits_summary,
    layer_verdicts,
    lower_hull,
    magnitude_prune_snr,
    nm_prune_mask,
    options_from_rows,
    parse_budget,
    tensor_verdicts,
    uniform_allocation,
)


def test_magnitude_prune_snr_matches_direct(rng: np.random.Generator) -> None:
    w = rng.standard_normal(1001).astype(np.float32)
    for keep in (0.1, 0.25, 0.5, 0.9):
        n_zero = int(math.floor((1 - keep) * w.size))
        order = np.argsort(np.abs(w), kind="stable")
        pruned = w.astype(np.float64).copy()
        pruned[order[:n_zero]] = 0
        direct = 10 * np.log10(np.sum(w.astype(np.float64) ** 2) / np.sum((w - pruned) ** 2))
        assert magnitude_prune_snr(w, [keep])[0] == pytest.approx(direct, abs=1e-9)
    assert math.isinf(magnitude_prune_snr(w, [1.0])[0])


def test_gaussian_75pct_pruning_matches_theory(rng: np.random.Generator) -> None:
    # paper Fig. 1: 75 % magnitude pruning of a Gaussian -> 5.6 dB (5.58 exact)
    w = rng.standard_normal(2_000_000)
    assert magnitude_prune_snr(w, [0.25])[0] == pytest.approx(5.58, abs=0.03)


def test_nm_mask_keeps_n_largest_per_group() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 16, 3, 3, generator=g)
    mask = nm_prune_mask(w, 2, 4)
    assert mask is not None and mask.shape == w.shape
    groups_w = w.permute(0, 2, 3, 1).reshape(-1, 4).abs()
    groups_m = mask.permute(0, 2, 3, 1).reshape(-1, 4)
    assert bool((groups_m.sum(1) == 2).all())
    kept_min = torch.where(groups_m, groups_w, torch.inf).min(1).values
    dropped_max = torch.where(~groups_m, groups_w, -torch.inf).max(1).values
    assert bool((kept_min >= dropped_max).all())
    assert nm_prune_mask(torch.randn(8, 1, 3, 3), 2, 4) is None  # depthwise
    lin = nm_prune_mask(torch.randn(5, 8), 1, 4)
    assert lin is not None and int(lin.sum()) == 10


def _rows(q: dict[int, float], p: dict[int, float]) -> list[dict]:
    return [{"bits": b, "quant_snr_db": q[b], "prune_snr_db": p[b]} for b in q]


def test_options_accounting() -> None:
    rows = _rows({4: 20.0, 8: 40.0}, {4: 6.0, 8: 15.0})
    extra = [
        {
            "family": "pruning",
            "label": "prune 81%",
            "keep": 3 / 16,
            "value_bits": 16,
            "meta_bits": 1.0,
            "snr_db": 5.0,
        }
    ]
    with_oh = options_from_rows(rows, extra, count_overhead=True)
    labels = {o.label: o for o in with_oh}
    assert labels["FP16"].bits_per_weight == 16 and math.isinf(labels["FP16"].snr_db)
    assert labels["INT4"].bits_per_weight == 4
    assert labels["prune 81%"].bits_per_weight == pytest.approx(4.0)  # 3 bits of values + 1 bit mask
    assert not any(o.label.startswith("prune 75") for o in with_oh)  # paper accounting only without overhead
    paper = options_from_rows(rows, extra, count_overhead=False)
    assert {o.label for o in paper if o.family == "pruning"} == {"prune 75.0%", "prune 50.0%"}
    assert next(o for o in paper if o.label == "prune 75.0%").bits_per_weight == 4


def test_tensor_verdicts_winner_margin_uncertain() -> None:
    opts = {
        "a": options_from_rows(_rows({4: 20.0}, {4: 6.0}), count_overhead=False),
        "b": options_from_rows(_rows({4: 10.0}, {4: 10.5}), count_overhead=False),
        "c": options_from_rows(_rows({4: 3.0}, {4: 12.0}), count_overhead=False),
    }
    vs = {v.name: v for v in tensor_verdicts(opts, [4])}
    assert (
        vs["a"].winner == "quantization"
        and vs["a"].margin_db == pytest.approx(14.0)
        and not vs["a"].uncertain
    )
    assert vs["b"].winner == "pruning" and vs["b"].margin_db == pytest.approx(0.5) and vs["b"].uncertain
    assert vs["c"].winner == "pruning" and vs["c"].runner_up == "quantization"
    (summary,) = bits_summary(vs.values())
    assert summary["wins"] == {"pruning": 2, "quantization": 1} and summary["close_calls"] == 1
    assert summary["majority"] == "pruning"


def test_verdict_respects_budget() -> None:
    opts = {"t": [Option("quantization", "INT4", 4, 20.0), Option("n:m", "2:4", 8.75, 30.0)]}
    (v,) = tensor_verdicts(opts, [4])
    assert v.winner == "quantization" and v.runner_up is None and math.isinf(v.margin_db)


def test_lower_hull_drops_dominated_and_concave() -> None:
    opts = [
        Option("quantization", "a", 2, 5.0),
        Option("quantization", "b", 3, 6.0),  # above the segment a-c in error: not on the hull
        Option("quantization", "c", 4, 20.0),
        Option("pruning", "d", 4, 10.0),  # dominated by c
        Option("fp16", "FP16", 16, math.inf),
    ]
    hull = lower_hull(opts)
    assert [o.label for o in hull] == ["a", "c", "FP16"]
    errs = [o.rel_error for o in hull]
    assert errs == sorted(errs, reverse=True)


def _brute_force(options, sizes, budget):
    names = list(options)
    best = None
    for combo in itertools.product(*(options[n] for n in names)):
        cost = sum(sizes[n] * o.bits_per_weight for n, o in zip(names, combo, strict=True))
        if cost <= budget * sum(sizes.values()) + 1e-9:
            err = sum(o.rel_error for o in combo)
            best = err if best is None else min(best, err)
    return best


def test_allocate_matches_brute_force_on_convex_instances(rng: np.random.Generator) -> None:
    for _ in range(20):
        options, sizes = {}, {}
        for t in range(4):
            # convex decreasing error in bits (like quantization: ~6 dB per bit + jitter)
            base = rng.uniform(3, 9)
            options[f"t{t}"] = [
                Option("quantization", f"INT{b}", b, base * (b - 1) + rng.uniform(0, 0.5))
                for b in range(2, 9)
            ]
            sizes[f"t{t}"] = 100
        for budget in (2.0, 3.5, 5.0, 8.0):
            alloc = allocate(options, sizes, budget)
            assert alloc.avg_bits <= budget + 1e-9
            opt = _brute_force(options, sizes, budget)
            got = sum(o.rel_error for o in alloc.choices.values())
            assert got <= opt * 1.05 + 1e-15


def test_allocate_beats_uniform_and_rejects_too_small_budget() -> None:
    options = {
        "hard": [Option("quantization", f"INT{b}", b, 6.0 * b - 10) for b in range(2, 9)],
        "easy": [Option("quantization", f"INT{b}", b, 6.0 * b + 10) for b in range(2, 9)]
        + [Option("pruning", "prune", 3, 40.0)],
    }
    sizes = {"hard": 1000, "easy": 1000}
    mixed = allocate(options, sizes, 4.0)
    uni = uniform_allocation(options, sizes, "quantization", 4.0)
    assert uni is not None and mixed.mean_rel_error <= uni.mean_rel_error
    assert mixed.choices["hard"].bits_per_weight > 4  # the hard tensor is kept at higher precision
    assert mixed.choices["easy"].bits_per_weight < 4
    assert sum(o.rel_error for o in mixed.choices.values()) == pytest.approx(
        _brute_force(options, sizes, 4.0)
    )
    assert uniform_allocation(options, sizes, "n:m", 4.0) is None
    with pytest.raises(ValueError, match="--budget"):
        allocate(options, sizes, 1.0)


@pytest.mark.parametrize(
    "text,bits", [("4", 4.0), ("4.5", 4.5), ("25%", 4.0), ("1kB", 8.0), ("0.5MB", 4000.0 / 1000)]
)
def test_parse_budget(text: str, bits: float) -> None:
    assert parse_budget(text, total_weights=1000 if "MB" not in text else 1_000_000) == pytest.approx(bits)


@pytest.mark.parametrize("text", ["abc", "0", "-1", "17", "200%"])
def test_parse_budget_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="--budget"):
        parse_budget(text, 1000)


def test_layer_verdicts_exact_and_heuristic() -> None:
    rows = []
    for chunk in range(4):
        rows += [
            {
                "layer": "L",
                "chunk": chunk,
                "bits": 4,
                "method": "quant",
                "solver": "rtn",
                "snr_db": 18.0,
                "kind": "heuristic",
            },
            {
                "layer": "L",
                "chunk": chunk,
                "bits": 4,
                "method": "quant",
                "solver": "exact",
                "snr_db": 20.0,
                "kind": "exact",
                "status": "optimal",
            },
            {
                "layer": "L",
                "chunk": chunk,
                "bits": 4,
                "method": "prune",
                "solver": "exact",
                "snr_db": 12.0 + chunk,
                "kind": "exact",
                "status": "optimal",
            },
            # heuristic-only layer: quant heuristic 10, quant bound 16, prune heuristic 11
            {
                "layer": "H",
                "chunk": chunk,
                "bits": 4,
                "method": "quant",
                "solver": "rtn",
                "snr_db": 10.0,
                "kind": "heuristic",
            },
            {
                "layer": "H",
                "chunk": chunk,
                "bits": 4,
                "method": "quant",
                "solver": "sdp",
                "snr_db": 16.0,
                "kind": "bound",
            },
            {
                "layer": "H",
                "chunk": chunk,
                "bits": 4,
                "method": "prune",
                "solver": "mag",
                "snr_db": 11.0,
                "kind": "heuristic",
            },
        ]
    vs = {v.layer: v for v in layer_verdicts(rows)}
    L, H = vs["L"], vs["H"]
    assert L.kind == "exact" and L.quant_wins == 4 and L.certain_chunks == 4 and L.winner == "quantization"
    assert L.median_margin_db == pytest.approx(20 - 13.5) and not L.uncertain
    assert H.kind == "heuristic" and H.winner == "pruning" and H.certain_chunks == 0 and H.uncertain


def test_exact_tie_goes_to_the_simpler_option() -> None:
    opts = {
        "t": [
            Option("quant+prune", "prune 50% + INT2", 2, 5.9),
            Option("quantization", "INT2", 2, 5.9 + 1e-12),
        ]
    }
    (v,) = tensor_verdicts(opts, [2])
    assert v.winner == "quantization" and v.margin_db == pytest.approx(0, abs=1e-9) and v.uncertain


def test_exact_tie_is_not_the_runner_up_when_another_family_exists() -> None:
    opts = {
        "t": [
            Option("quant+prune", "prune 50% + INT2", 2, 5.9),
            Option("quantization", "INT2", 2, 5.9),
            Option("pruning", "prune 93.8%", 2, 1.0),
        ]
    }
    (v,) = tensor_verdicts(opts, [2])
    assert v.winner == "quantization" and v.runner_up == "pruning" and v.margin_db == pytest.approx(4.9)
    assert not v.uncertain


def test_allocate_is_exact_where_the_greedy_is_not() -> None:
    """Issue 13 §4: the knapsack is solved exactly. The hull greedy buys the steepest upgrade first and then
    cannot afford the combination that brute force finds."""
    options = {
        "a": [Option("quantization", "INT2", 2, 0.0), Option("quantization", "INT6", 6, 30.0)],
        "b": [Option("quantization", "INT2", 2, 0.0), Option("quantization", "INT5", 5, 10 * math.log10(5))],
    }
    sizes = {"a": 100, "b": 100}
    # room for 4 more bits on one tensor: b's upgrade has the better gain per bit (0.8 / 3 > 0.999 / 4), so the
    # greedy buys it and can no longer afford a's, which is the better single choice (errors 1.2 vs 1.001)
    budget = 4.0
    from pvq.compare._budget import _greedy

    exact = allocate(options, sizes, budget)
    greedy = _greedy(options, sizes, budget)
    assert exact.certified and exact.gap == 0.0
    assert sum(o.rel_error for o in exact.choices.values()) == pytest.approx(_brute_force(options, sizes, budget))
    assert exact.mean_rel_error < greedy.mean_rel_error


def test_plan_is_never_worse_than_any_uniform_baseline() -> None:
    """Every uniform baseline is a feasible point of the same program, so the certified plan is at least as
    good in the plan's objective, on random instances with quantization, pruning and N:M options."""
    rng = np.random.default_rng(7)
    for trial in range(20):
        options, sizes = {}, {}
        for t in range(int(rng.integers(2, 7))):
            q = [Option("quantization", f"INT{b}", b, 6.0 * b + rng.normal(0, 6)) for b in range(2, 9)]
            p = [Option("pruning", f"prune{b}", b + 1.0, 4.0 * b + rng.normal(0, 8)) for b in range(2, 9)]
            nm = [Option("n:m", "2:4", 8.75, 10 + rng.normal(0, 5))]
            options[f"t{t}"] = q + p + nm + [Option("fp16", "FP16", 16.0, math.inf)]
            sizes[f"t{t}"] = int(rng.integers(10, 10_000))
        for budget in (3.0, 4.0, 6.0, 9.0):
            plan = allocate(options, sizes, budget)
            assert plan.certified and plan.avg_bits <= budget + 1e-9
            for fam in ("quantization", "pruning", "n:m"):
                uni = uniform_allocation(options, sizes, fam, budget)
                if uni is not None:
                    assert plan.mean_rel_error <= uni.mean_rel_error * (1 + 1e-9), (trial, budget, fam)


def test_allocation_over_applied_costs_keeps_its_budget_on_the_applied_plan() -> None:
    """A plan allocated on :func:`applied_costs` stores, as ``pvq apply`` builds it, within the budget (up to each
    tensor's one FP16 scale): the sweep's costs left out mask padding and row offsets (a depthwise 3x3 row of 9
    weights pays 16 mask bits and a 64-bit offset) and packing (9 INT4 codes fill a 64-bit row)."""
    from pvq.apply import plan_from_allocation
    from pvq.compare import applied_costs
    from pvq.recipes import recipe_bits

    shapes = {"dw": [96, 1, 3, 3], "pw": [64, 96, 1, 1], "fc": [10, 1280]}
    sweep = [
        Option("quantization", f"INT{b}", float(b), 6.02 * b) for b in (2, 3, 4, 6, 8)
    ] + [Option("pruning", f"prune {100 - 100 * b / 16:.1f}%", b + 1.0, 3.0 * b) for b in (2, 3, 4, 6, 8)]
    costed = {n: applied_costs(sweep, s) for n, s in shapes.items()}
    assert costed["fc"][2].bits_per_weight == pytest.approx(4.0)  # INT4 on 1,280 inputs: packs exactly
    assert costed["dw"][2].bits_per_weight == pytest.approx(64 / 9)  # INT4 on 9 inputs: one int32 pair per row
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    for budget in (3.0, 4.0, 6.0):
        alloc = allocate(costed, sizes, budget)
        plan = plan_from_allocation(alloc.rows())
        stored = sum(
            sizes[n] * (b := recipe_bits(plan.recipes[n], shapes[n])).total - sizes[n] * b.scales for n in shapes
        )
        assert stored / sum(sizes.values()) <= budget + 1e-9
        assert stored / sum(sizes.values()) == pytest.approx(alloc.avg_bits)
