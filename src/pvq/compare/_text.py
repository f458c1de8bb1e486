"""The verdict in words: headline, supporting points and plain statements of uncertainty."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pvq.compare._options import DISPLAY

__all__ = ["Verdict", "verdict_text"]


@dataclass
class Verdict:
    """``headline``: one sentence; ``points``: supporting facts; ``warnings``: where the answer is
    uncertain or limited. Text may contain ``**bold**`` markers."""

    headline: str
    points: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"headline": self.headline, "points": self.points, "warnings": self.warnings}

    def plain(self) -> str:
        lines = [self.headline, *[f"- {p}" for p in self.points], *[f"! {w}" for w in self.warnings]]
        return "\n".join(lines).replace("**", "")


def _db(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "inf" if math.isinf(x) else f"{x:.1f} dB"


def _human_bytes(bits: float) -> str:
    b = bits / 8
    for unit in ("B", "kB", "MB", "GB"):
        if b < 1000 or unit == "GB":
            return f"{b:.3g} {unit}"
        b /= 1000
    return f"{b:.3g} GB"


def verdict_text(result: Any) -> Verdict:
    """Words for a :class:`~pvq.compare.CompareResult`."""
    cfg = result.config
    summary = {r["bits"]: r for r in result.summary}
    paper = {r["bits"]: r for r in result.summary_paper}
    ref_bits = 4 if 4 in summary else sorted(summary)[len(summary) // 2]
    s = summary[ref_bits]
    n = s["tensors"]
    q_wins = s["wins"].get("quantization", 0)
    if q_wins == n:
        head = f"At {ref_bits} bits per weight, **quantization beats pruning for all {n} tensors**"
    elif q_wins * 2 > n:
        head = f"At {ref_bits} bits per weight, **quantization is better for {q_wins} of {n} tensors**"
    else:
        top = max((f for f in s["wins"] if f != "quantization"), key=lambda f: s["wins"][f])
        head = f"At {ref_bits} bits per weight, **{DISPLAY[top]} is better for {s['wins'][top]} of {n} tensors** (quantization: {q_wins})"
    head += (
        f" (median SNR {_db(s['median_quant_snr_db'])} for INT{ref_bits} vs {_db(s['median_prune_snr_db'])} "
        f"for the best pruning of the same size, mask {'counted' if cfg.count_overhead else 'not counted'})."
    )
    v = [head]
    points: list[str] = []
    flips = [b for b in sorted(summary) if summary[b]["majority"] != "quantization"]
    if flips:
        points.append(
            "Quantization is not the majority winner at "
            + ", ".join(
                f"{b} bits ({DISPLAY[summary[b]['majority']]}: {summary[b]['wins'][summary[b]['majority']]}/{summary[b]['tensors']})"
                for b in flips
            )
            + "."
        )
    else:
        points.append(
            f"Quantization is the majority winner at every budget tested ({min(summary)}-{max(summary)} bits)."
        )
    prune_any = {b: summary[b]["tensors"] - summary[b]["wins"].get("quantization", 0) for b in summary}
    if any(prune_any.values()):
        points.append(
            "Tensors where something other than plain quantization wins: "
            + ", ".join(f"{k} at {b} bits" for b, k in sorted(prune_any.items()) if k)
            + " (see the table and the kurtosis map; the paper expects pruning to win only on heavy-tailed, high-kurtosis tensors)."
        )
    if ref_bits in paper:
        p = paper[ref_bits]
        points.append(
            f"Paper's accounting (pruning mask for free, sparsity 1 - b/16): at {ref_bits} bits quantization wins "
            f"{p['wins'].get('quantization', 0)} of {p['tensors']} tensors."
        )
    gran = granularity_sentence(getattr(result, "granularity_summary", []) or [], ref_bits)
    if gran:
        points.append(gran)
    a = result.allocation
    points.append(recommendation_sentence(result))
    upgrades = sorted(
        (n for n, o in a.choices.items() if o.bits_per_weight > result.budget_bits + 1e-9),
        key=lambda n: -a.choices[n].bits_per_weight,
    )
    if upgrades:
        points.append(
            f"Keep at higher precision: {', '.join(f'{n} ({a.choices[n].label})' for n in upgrades[:6])}"
            + (f" and {len(upgrades) - 6} more" if len(upgrades) > 6 else "")
            + "."
        )
    pruned = [n for n, o in a.choices.items() if o.family != "quantization" and o.family != "fp16"]
    if pruned:
        points.append(
            f"Prune (alone or with quantization): {', '.join(f'{n} ({a.choices[n].label})' for n in pruned[:6])}"
            + (f" and {len(pruned) - 6} more" if len(pruned) > 6 else "")
            + "."
        )
    for lv in result.layer_verdicts:
        if lv.bits == ref_bits:
            points.append(
                f"Layer {lv.layer} at {lv.bits} bits (output error, {lv.chunks} chunks, {lv.kind}): "
                f"quantization wins {lv.quant_wins}/{lv.chunks}, median {_db(lv.median_quant_snr_db)} vs {_db(lv.median_prune_snr_db)}."
            )
    warnings: list[str] = []
    close = sum(r["close_calls"] for r in result.summary)
    total = sum(r["tensors"] for r in result.summary)
    if close:
        warnings.append(
            f"{close} of {total} tensor/bit-width comparisons are within 1 dB: too close to call."
        )
    heur = [lv for lv in result.layer_verdicts if lv.kind != "exact" or lv.uncertain]
    if heur:
        warnings.append(
            f"{len(heur)} layer/bit-width results are not settled by proved optima (heuristic, time limit or close margin): "
            + ", ".join(sorted({f"{lv.layer}@{lv.bits}" for lv in heur})[:6])
            + "."
        )
    if not result.layer_rows:
        warnings.append(f"No layer-wise (output error) comparison: {result.layers_note}")
    ev = getattr(result, "evaluation", None)
    if ev is None:
        warnings.append(
            "Every number here is a weight-space SNR (and, where calibration data was used, a layer-output SNR); "
            "no accuracy was measured. The budget recommendation treats every layer as equally sensitive."
            + (f" {result.eval_note}" if getattr(result, "eval_note", "") else "")
        )
    else:
        warnings.append(
            "The per-tensor numbers are weight-space SNRs; the model-level numbers were measured on held-out data "
            f"({ev.calibration}; evaluation never uses calibration inputs). The budget recommendation still treats "
            "every layer as equally sensitive."
        )
        warnings += [f"Measured options: {n}." for n in ev.notes]
    for note in result.notes:
        warnings.append(note)
    del cfg
    if ev is not None:
        from pvq.compare._eval_text import measured_points

        head, measured = measured_points(ev)
        return Verdict(head, [*measured, "Per-tensor SNR proxy: " + v[0], *points], warnings)
    return Verdict(v[0], points, warnings)


_SCOPE_WORDS = {"tensor": "per tensor", "channel": "per channel"}


def _scope_words(label: str) -> str:
    """``channel`` -> ``per channel``, ``g128`` -> ``groups of 128``, ``uint:g128`` -> ``groups of 128 + zero point``."""
    zp = label.startswith("uint:")
    scope = label.split(":")[-1]
    words = _SCOPE_WORDS.get(scope, f"groups of {scope[1:]}")
    return words + (" + zero point" if zp else "")


def granularity_sentence(summary: list[dict[str, Any]], ref_bits: int) -> str:
    """One sentence: at ``ref_bits`` code bits, per granularity, how often quantization beats magnitude pruning
    of the same real size (:func:`pvq.tensors.granularity_summary` rows); empty when there are none."""
    rows = [r for r in summary if int(r["bits"]) == ref_bits]
    if not rows:
        return ""
    parts = [
        f"{_scope_words(r['granularity'])} ({r['mean_real_bits']:.2f} bits) {r['quant_wins']}/{r['tensors']} "
        f"(95 % Wilson {100 * r['quant_win_low']:.0f}-{100 * r['quant_win_high']:.0f} %, median {_db(r['median_quant_snr_db'])} "
        f"vs {_db(r['median_prune_snr_db'])})"
        for r in rows
    ]
    return (
        f"At equal real bits per weight (FP16 scales, zero points and the stored bitmask counted), INT{ref_bits} "
        f"beats magnitude pruning of the same size in: {'; '.join(parts)}."
    )


def _format_counts(choices: Any) -> str:
    """The formats an allocation chose, most used first: ``NF4 for 52 tensors, INT8 for 1 tensor``."""
    labels = Counter(o.label for o in choices.values())
    return ", ".join(f"{k} for {c} tensor{'s' if c > 1 else ''}" for k, c in labels.most_common())


def _count(n: float) -> str:
    """``3.47 M`` for a large count, ``3,072`` for a small one."""
    return f"{n / 1e6:.3g} M" if n >= 1e5 else f"{int(n):,}"


def recommendation_sentence(result: Any) -> str:
    """The recommendation, naming the formats it chose, with the analysed weights and the whole model's size
    (every parameter: embeddings, norms and biases too, kept at FP16) said apart."""
    a = result.allocation
    analysed = sum(a.sizes[n] for n in a.choices)
    total = max(int(getattr(result, "total_params", 0) or 0), analysed)
    uni = {b.label: b for b in result.baselines}
    uq = uni.get("all quantization")
    cmp = f"; every tensor quantized ({_format_counts(uq.choices)}): {_db(uq.snr_db)}" if uq is not None else ""
    text = (
        f"Recommendation for a budget of {result.budget_bits:.3g} bits per weight on the {_count(analysed)} "
        f"conv/linear weights analysed: {_format_counts(a.choices)}; {_human_bytes(a.total_bits)} for them "
        f"(FP16: {_human_bytes(16.0 * analysed)}); model SNR {_db(a.snr_db)}{cmp}."
    )
    if total > analysed:
        rest = total - analysed
        whole = a.total_bits + 16.0 * rest
        text += (
            f" The model has {_count(total)} parameters in all; the other {_count(rest)} (embeddings, "
            f"norms, biases) stay FP16, so the whole model takes {_human_bytes(whole)} "
            f"({whole / total:.3g} bits per parameter) against {_human_bytes(16.0 * total)} at FP16."
        )
    return text
