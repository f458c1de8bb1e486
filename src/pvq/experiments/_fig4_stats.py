"""Fig. 4 statistics: one record per solved unit (a chunk's row at one bit-width), and per (layer, bits)
the fraction of units each method's exact optimum wins (ties apart) with 95 % Wilson intervals, and the
pooled layer SNR ``10 log10(sum signal / sum error)`` of every solver.

A unit is one row problem ``(G_chunk, w_row)``: for a depthwise layer one output channel (its whole
9- or 25-input row), otherwise one output row over one chunk of ``opt_dim`` inputs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "TIE_RTOL",
    "wilson_interval",
    "unit_records",
    "compare_unit",
    "layer_summary",
]

TIE_RTOL = 1e-9  # errors equal within this relative tolerance are a tie (float round-off of equal optima)
_HEURISTICS = (
    ("prune", "magnitude"),
    ("prune", "obs"),
    ("prune", "swap"),
    ("quant", "rtn"),
    ("quant", "gptq"),
)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n`` (``(nan, nan)`` when ``n == 0``).

    Uses :meth:`scipy.stats.binomtest(...).proportion_ci` with ``method='wilson'``.
    """
    if n == 0:
        return math.nan, math.nan
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval: need 0 <= k <= n, got k={k}, n={n}")
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def unit_records(rows: Iterable[Mapping[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    """Solver rows (:func:`pvq.layerwise.result_rows` plus ``row_id``, ``n``) to one record per
    (layer, chunk, row_id, bits): ``signal``, ``<method>_<solver>`` = error ``||X(w - w0)||^2``,
    ``<method>_exact_status`` / ``_gap``, ``<method>_seconds`` (all its solvers). ``extra`` is copied in."""
    recs: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = (r["layer"], int(r["chunk"]), int(r["row_id"]), int(r["bits"]))
        rec = recs.setdefault(
            key,
            {"layer": key[0], "chunk": key[1], "row_id": key[2], "bits": key[3], "n": int(r["n"]),
             "signal": float(r["signal"]), **extra},
        )  # fmt: skip
        m, s = r["method"], r["solver"]
        rec[f"{m}_{s}"] = float(r["error"])
        rec[f"{m}_seconds"] = rec.get(f"{m}_seconds", 0.0) + float(r["seconds"])
        if r["kind"] == "exact":
            rec[f"{m}_exact_status"] = r["status"]
            rec[f"{m}_exact_gap"] = r.get("gap")
    return [recs[k] for k in sorted(recs, key=lambda k: (k[0], k[3], k[1], k[2]))]


def compare_unit(quant_error: float, prune_error: float, rtol: float = TIE_RTOL) -> str:
    """``'quant'``, ``'prune'`` or ``'tie'``: which optimum has the smaller output error."""
    if abs(quant_error - prune_error) <= rtol * max(abs(quant_error), abs(prune_error)):
        return "tie"
    return "quant" if quant_error < prune_error else "prune"


def _pooled_db(signal: float, error: float) -> float:
    return math.inf if error <= 0 else 10.0 * math.log10(signal / error)


def layer_summary(
    units: Sequence[Mapping[str, Any]], population: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """Per (layer, bits) over the units that have both exact optima.

    Keys: ``units``, ``population`` (units in the layer, if given), ``quant_wins``, ``prune_wins``,
    ``ties``, ``zero_signal`` (units whose inputs are all zero), ``quant_win_frac`` / ``prune_win_frac`` / ``tie_frac`` with ``*_ci95`` (Wilson),
    ``certified`` (units with both optima proved), ``time_limit`` (units where either hit its limit),
    ``pooled_<method>_<solver>_db`` for every solver present on all of them, and for the units with the
    SDP: ``sdp_units``, ``pooled_quant_sdp_db`` (the paper's bound) and ``pooled_quant_sdp_round_db``.
    """
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for u in units:
        if "quant_exact" in u and "prune_exact" in u:
            groups[(u["layer"], int(u["bits"]))].append(u)
    out = []
    for (layer, bits), us in sorted(groups.items()):
        n = len(us)
        verdict = [compare_unit(u["quant_exact"], u["prune_exact"]) for u in us]
        k = {v: verdict.count(v) for v in ("quant", "prune", "tie")}
        row: dict[str, Any] = {"layer": layer, "model": us[0].get("model"), "bits": bits, "units": n}
        if population is not None and layer in population:
            row["population"] = int(population[layer])
        row.update({"quant_wins": k["quant"], "prune_wins": k["prune"], "ties": k["tie"]})
        row["zero_signal"] = sum(float(u["signal"]) <= 0 for u in us)  # dead inputs: both errors 0, a tie
        for name, kk in (("quant_win", k["quant"]), ("prune_win", k["prune"]), ("tie", k["tie"])):
            row[f"{name}_frac"] = kk / n
            row[f"{name}_ci95"] = list(wilson_interval(kk, n))
        proved = [
            u.get("quant_exact_status") == "optimal" and u.get("prune_exact_status") == "optimal" for u in us
        ]
        row["certified"] = int(sum(proved))
        row["time_limit"] = n - row["certified"]
        sig = sum(float(u["signal"]) for u in us)
        solvers = [("quant", "exact"), ("prune", "exact"), *_HEURISTICS]
        for m, s in solvers:
            if all(f"{m}_{s}" in u for u in us):
                row[f"pooled_{m}_{s}_db"] = _pooled_db(sig, sum(float(u[f"{m}_{s}"]) for u in us))
        sdp = [u for u in us if "quant_sdp" in u]
        if sdp:
            ssig = sum(float(u["signal"]) for u in sdp)
            row["sdp_units"] = len(sdp)
            for s in ("exact", "sdp", "sdp_round"):
                row[f"sdp_subset_quant_{s}_db"] = _pooled_db(ssig, sum(float(u[f"quant_{s}"]) for u in sdp))
        out.append(row)
    return out
