"""The paper's App. H (Table 5, twice the fine-tuning epochs) against its Table 1, and pvq's toolbox cells.

Figures: Kuzmin et al., NeurIPS 2023, Table 1 and Table 5 (top-1 % on ImageNet), the three models Table 5 has;
the same numbers are in ``../shared/reference/paper_table{1,5}_*.csv`` (a test checks they agree).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["PAPER_TABLE1_ACC", "PAPER_TABLE5_ACC", "paper_longer_changes", "longer_notes"]

_BITS = (8, 7, 6, 5, 4, 3, 2)
# model -> method -> accuracies at 8..2 bits
PAPER_TABLE1_ACC: dict[str, dict[str, tuple[float, ...]]] = {
    "Resnet-50": {"quant": (76.4, 76.4, 76.4, 76.3, 76.2, 75.5, 72.3),
                  "pruning": (76.6, 76.4, 76.2, 76.1, 75.9, 75.4, 74.3)},
    "EfficientNet": {"quant": (75.2, 75.3, 75.0, 74.6, 74.0, 71.5, 60.9),
                     "pruning": (72.5, 70.9, 68.1, 63.6, 56.4, 44.5, 27.1)},
    "ViT": {"quant": (81.5, 81.4, 81.4, 81.0, 80.4, 78.4, 72.2),
            "pruning": (76.6, 76.6, 76.2, 73.1, 72.4, 71.5, 69.4)},
}
PAPER_TABLE5_ACC: dict[str, dict[str, tuple[float, ...]]] = {
    "Resnet-50": {"quant": (76.6, 76.6, 76.5, 76.3, 76.2, 75.5, 72.3),
                  "pruning": (76.6, 76.7, 76.6, 76.3, 76.3, 75.8, 74.8)},
    "EfficientNet": {"quant": (75.2, 75.3, 75.0, 74.6, 74.0, 71.8, 61.5),
                     "pruning": (73.0, 71.9, 69.5, 65.8, 60.0, 50.7, 34.6)},
    "ViT": {"quant": (81.9, 81.8, 81.7, 81.4, 80.8, 78.9, 73.7),
            "pruning": (80.3, 79.7, 79.0, 77.7, 76.3, 74.3, 71.6)},
}


def paper_longer_changes(bits: int) -> dict[str, dict[str, float]]:
    """Per Table 5 model at ``bits``: ``quant`` / ``pruning`` = Table 5 − Table 1 (points gained by twice the
    epochs), ``gap1`` / ``gap5`` = quant − pruning in Table 1 / Table 5."""
    i = _BITS.index(bits)
    out = {}
    for model, t1 in PAPER_TABLE1_ACC.items():
        t5 = PAPER_TABLE5_ACC[model]
        out[model] = {"quant": round(t5["quant"][i] - t1["quant"][i], 6),
                      "pruning": round(t5["pruning"][i] - t1["pruning"][i], 6),
                      "gap1": round(t1["quant"][i] - t1["pruning"][i], 6),
                      "gap5": round(t5["quant"][i] - t5["pruning"][i], 6)}
    return out


def _mean_se(r: dict[str, Any]) -> tuple[float, float]:
    return r["value"], (r["std"] or 0.0) / math.sqrt(max(r["n_seeds"], 1))


def longer_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per budget: what twice the epochs changed in pvq's cells (lsq -> lsq_2x, prune_gradual ->
    prune_gradual_2x, ± 2 combined standard errors) next to the paper's Table 5 − Table 1 changes, and whether
    the quant − pruning gap kept its sign in both."""
    out = []
    by = {(r.get("model"), r["variant"], r["budget_bits"]): r for r in rows if r.get("value") is not None}
    for model, _, b in sorted(k for k in by if k[1] == "lsq_2x"):
        have = [by.get((model, n, b)) for n in ("lsq", "lsq_2x", "prune_gradual", "prune_gradual_2x")]
        if any(r is None for r in have) or b not in _BITS:
            continue
        (q1, sq1), (q2, sq2), (p1, sp1), (p2, sp2) = (_mean_se(r) for r in have)  # type: ignore[arg-type]
        paper = paper_longer_changes(b)
        pq = ", ".join(f"{m} {c['quant']:+.1f}" for m, c in paper.items())
        pp = ", ".join(f"{m} {c['pruning']:+.1f}" for m, c in paper.items())
        flips = [m for m, c in paper.items() if (c["gap1"] > 0) != (c["gap5"] > 0)]
        ours_flip = (q1 - p1 > 0) != (q2 - p2 > 0)
        out.append(
            f"App. H @ {b} bits ({model}): 2x epochs changed LSQ by {q2 - q1:+.2f} ± {2 * math.hypot(sq1, sq2):.2f}"
            f" and gradual pruning by {p2 - p1:+.2f} ± {2 * math.hypot(sp1, sp2):.2f} points (paper, Table 5 - "
            f"Table 1: quant {pq}; pruning {pp}); gap quant - pruning {q1 - p1:+.2f} -> {q2 - p2:+.2f} "
            f"({'sign flipped' if ours_flip else 'same sign'}; paper: "
            f"{'flipped for ' + ', '.join(flips) if flips else 'same sign for all three models'})."
        )
    return out
