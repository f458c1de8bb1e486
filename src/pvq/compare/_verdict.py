"""Which compression wins, per tensor and bit budget, and per layer from the layer-wise solves."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pvq.compare._options import Option

__all__ = [
    "CLOSE_MARGIN_DB",
    "TensorVerdict",
    "LayerVerdict",
    "tensor_verdicts",
    "bits_summary",
    "layer_verdicts",
]

CLOSE_MARGIN_DB = 1.0  # below this the two answers are within measurement/modelling noise: say "close"
_EPS = 1e-9
_SIMPLICITY = {"quantization": 0, "pruning": 1, "n:m": 2, "quant+prune": 3, "quant+n:m": 4, "fp16": 5}


@dataclass(frozen=True)
class TensorVerdict:
    """The winner for one tensor at a budget of ``bits`` bits per weight (equal storage).

    ``winner``/``runner_up`` are option families (quantization, pruning, n:m, quant+n:m); ``margin_db``
    is winner SNR minus the best SNR of any other family (``inf`` when no other family fits the budget).
    ``uncertain`` when the margin is below :data:`CLOSE_MARGIN_DB`.
    """

    name: str
    bits: int
    winner: str
    winner_label: str
    snr_db: float
    runner_up: str | None
    runner_up_label: str | None
    runner_up_snr_db: float | None
    margin_db: float
    quant_snr_db: float | None
    prune_snr_db: float | None
    uncertain: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _best_per_family(options: Sequence[Option], budget: float) -> dict[str, Option]:
    best: dict[str, Option] = {}
    for o in options:
        if o.family == "fp16" or o.bits_per_weight > budget + _EPS or math.isnan(o.snr_db):
            continue
        cur = best.get(o.family)
        if (
            cur is None
            or o.snr_db > cur.snr_db
            or (o.snr_db == cur.snr_db and o.bits_per_weight < cur.bits_per_weight)
        ):
            best[o.family] = o
    return best


def tensor_verdicts(
    options: Mapping[str, Sequence[Option]], bits: Iterable[int], close_db: float = CLOSE_MARGIN_DB
) -> list[TensorVerdict]:
    """One verdict per (tensor, bit budget): the best option of each family that fits in ``bits``
    bits per weight, and the family with the highest SNR. Tensors where nothing fits are skipped."""
    out: list[TensorVerdict] = []
    for b in bits:
        for name, opts in options.items():
            best = _best_per_family(opts, float(b))
            if not best:
                continue
            # equal SNR (to 1e-6 dB: e.g. 50 % pruning of an INT2 tensor that is already > 50 % zeros)
            # goes to the cheaper, then the simpler option
            ranked = sorted(
                best.values(), key=lambda o: (-round(o.snr_db, 6), o.bits_per_weight, _SIMPLICITY[o.family])
            )
            win = ranked[0]
            # runner-up: the best other family that is not the very same tensor (an exact tie, e.g. 50 % pruning
            # of an INT2 tensor that is > 50 % zeros already); exact ties only when nothing else is left
            distinct = [o for o in ranked[1:] if abs(o.snr_db - win.snr_db) > 1e-6]
            second = distinct[0] if distinct else (ranked[1] if len(ranked) > 1 else None)
            margin = (win.snr_db - second.snr_db) if second is not None else math.inf
            if math.isnan(margin):  # inf - inf: both lossless
                margin = 0.0
            prune_like = [best[f].snr_db for f in ("pruning", "n:m") if f in best]
            out.append(
                TensorVerdict(
                    name=name,
                    bits=int(b),
                    winner=win.family,
                    winner_label=win.label,
                    snr_db=win.snr_db,
                    runner_up=second.family if second else None,
                    runner_up_label=second.label if second else None,
                    runner_up_snr_db=second.snr_db if second else None,
                    margin_db=margin,
                    quant_snr_db=best["quantization"].snr_db if "quantization" in best else None,
                    prune_snr_db=max(prune_like) if prune_like else None,
                    uncertain=bool(margin < close_db),
                )
            )
    return out


def bits_summary(verdicts: Iterable[TensorVerdict]) -> list[dict[str, Any]]:
    """Per bit budget: how many tensors each family wins, how many are close calls, median SNRs."""
    by_bits: dict[int, list[TensorVerdict]] = defaultdict(list)
    for v in verdicts:
        by_bits[v.bits].append(v)
    rows = []
    for b in sorted(by_bits):
        vs = by_bits[b]
        wins: dict[str, int] = defaultdict(int)
        for v in vs:
            wins[v.winner] += 1
        top = max(wins.items(), key=lambda kv: kv[1])
        q = [v.quant_snr_db for v in vs if v.quant_snr_db is not None and math.isfinite(v.quant_snr_db)]
        p = [v.prune_snr_db for v in vs if v.prune_snr_db is not None and math.isfinite(v.prune_snr_db)]
        rows.append(
            {
                "bits": b,
                "tensors": len(vs),
                "wins": dict(sorted(wins.items())),
                "majority": top[0],
                "majority_fraction": top[1] / len(vs),
                "close_calls": sum(v.uncertain for v in vs),
                "median_quant_snr_db": statistics.median(q) if q else None,
                "median_prune_snr_db": statistics.median(p) if p else None,
            }
        )
    return rows


@dataclass(frozen=True)
class LayerVerdict:
    """Layer-wise (output-error) comparison for one layer and bit-width over its solved chunks.

    ``quant_wins`` counts chunks where the best quantization SNR beats the best pruning SNR.
    ``certain_chunks`` counts chunks whose winner is settled: both optima proved (kind ``exact``), or
    the loser's upper bound (from a ``bound`` row, or its exact value) below the winner's achieved SNR.
    ``kind`` is ``exact`` when every chunk was settled by exact optima, else ``heuristic``.
    """

    layer: str
    bits: int
    chunks: int
    quant_wins: int
    certain_chunks: int
    median_quant_snr_db: float
    median_prune_snr_db: float
    median_margin_db: float
    kind: str
    winner: str
    uncertain: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def layer_verdicts(
    rows: Iterable[Mapping[str, Any]], close_db: float = CLOSE_MARGIN_DB
) -> list[LayerVerdict]:
    """Summarise layer-wise rows (DESIGN.md keys ``layer, chunk, bits, method, solver, snr_db, kind``).

    Per chunk and method: achieved SNR = best over heuristic/exact rows; upper limit = the exact value
    when proved optimal, else the smallest ``bound`` row (an SNR no solution can beat), else ``inf``.
    Rows may carry ``row`` (several output rows per chunk): they are averaged in noise power.
    """
    # (layer, bits, chunk, method) -> {"ach": best achieved SNR, "ub": upper bound, "exact": bool}
    acc: dict[tuple[str, int, Any, str], dict[str, Any]] = {}
    for r in rows:
        key = (str(r["layer"]), int(r["bits"]), r.get("chunk", 0), str(r["method"]))
        d = acc.setdefault(key, {"ach": -math.inf, "ub": math.inf, "exact": False})
        snr = float(r["snr_db"])
        kind = str(r.get("kind", "heuristic"))
        status = str(r.get("status", "optimal" if kind == "exact" else ""))
        if kind == "bound":
            d["ub"] = min(d["ub"], snr)
        else:
            d["ach"] = max(d["ach"], snr)
            if kind == "exact" and status == "optimal":
                d["exact"] = True
                d["ub"] = min(d["ub"], snr)
    chunks: dict[tuple[str, int], dict[Any, dict[str, dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for (layer, b, chunk, method), d in acc.items():
        chunks[(layer, b)][chunk][method] = d
    out = []
    for (layer, b), per_chunk in sorted(chunks.items()):
        qs, ps, margins = [], [], []
        wins = settled = exact_all = 0
        n = 0
        for methods in per_chunk.values():
            if "quant" not in methods or "prune" not in methods:
                continue
            q, p = methods["quant"], methods["prune"]
            if not (math.isfinite(q["ach"]) or math.isfinite(p["ach"])):
                continue
            n += 1
            qs.append(q["ach"])
            ps.append(p["ach"])
            margins.append(q["ach"] - p["ach"])
            q_wins = q["ach"] > p["ach"]
            wins += q_wins
            loser, winner = (p, q) if q_wins else (q, p)
            settled += loser["ub"] <= winner["ach"]
            exact_all += q["exact"] and p["exact"]
        if n == 0:
            continue
        med_margin = statistics.median(margins)
        out.append(
            LayerVerdict(
                layer=layer,
                bits=b,
                chunks=n,
                quant_wins=wins,
                certain_chunks=settled,
                median_quant_snr_db=statistics.median(qs),
                median_prune_snr_db=statistics.median(ps),
                median_margin_db=med_margin,
                kind="exact" if exact_all == n else "heuristic",
                winner="quantization" if wins * 2 > n else ("pruning" if wins * 2 < n else "tie"),
                uncertain=bool(abs(med_margin) < close_db or settled < n or wins * 2 == n),
            )
        )
    return out
