"""Draw the figures of a compare run and write ``OUT/index.html``."""

from __future__ import annotations

import html
import math
import re
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pvq.report import _fig_compare as F
from pvq.report._html import render_compare_html

__all__ = ["write_compare_report", "theory_curve"]


def theory_curve() -> Callable[[float, int], tuple[float, float]] | None:
    """``(kurtosis, bits) -> (quant SNR, prune SNR)`` of a Student-t (nu = 2) truncated to that kurtosis,
    from :mod:`pvq.theory`; ``None`` when the theory module is not available."""
    try:
        from pvq.theory import expected_prune_mse, get_distribution, optimal_quant
    except ImportError:
        return None
    cache: dict[float, Any] = {}

    def curve(k: float, b: int) -> tuple[float, float]:
        if k not in cache:
            cache[k] = get_distribution("student-t", nu=2.0, kurtosis=float(k))
        d = cache[k]
        var = float(d.variance())
        _, q_mse = optimal_quant(d, int(b))
        p_mse = expected_prune_mse(d, 1.0 - b / 16)
        return 10 * math.log10(var / q_mse), 10 * math.log10(var / p_mse)

    return curve


def _md(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def _kurtosis_points(rows: Sequence[dict[str, Any]]) -> list[float]:
    k = sorted(
        {
            (r["name"], float(r["kurtosis"]))
            for r in rows
            if r.get("kurtosis") is not None and math.isfinite(float(r["kurtosis"]))
        }
    )
    vals = np.array([v for _, v in k])
    if vals.size == 0:
        return []
    pts = [float(np.percentile(vals, q)) for q in (10, 50, 90)] + [float(vals.max())]
    out: list[float] = []
    for p in pts:  # drop near-duplicates and kurtoses below what a truncated t (nu=2) can have
        if p > 1.9 and all(abs(p - o) / o > 0.05 for o in out):
            out.append(p)
    return out


def write_compare_report(
    result: Any, verdict: Any, out: Path, version: str, files: Sequence[Path] = ()
) -> Path:
    """Figures (``OUT/figures/*.png|svg``) and the page (``OUT/index.html``); returns the page's path."""
    from pvq.compare._write import natural_sparsity_rows

    out = Path(out)
    fdir = out / "figures"
    trows = result.tensor_rows()
    vrows = [v.to_json() for v in result.verdicts]
    ref_bits = 4 if 4 in result.config.bits else sorted(result.config.bits)[len(result.config.bits) // 2]
    figs: dict[str, F.Figure] = {}

    def add(f: F.Figure | None) -> None:
        if f is not None:
            figs[f.key] = f

    ev = getattr(result, "evaluation", None)
    if ev is not None:  # the first figure: measured quality vs real bits per weight
        add(F.fig_measured(ev.rows(), ev.primary, ev.direction, fdir))
    add(F.fig_verdict_bits(result.summary, fdir, overhead=result.config.count_overhead))
    add(F.fig_scatter(trows, fdir))
    curve = theory_curve()
    theory_note = ""
    if curve is not None:
        try:
            add(F.fig_theory(_kurtosis_points(trows), sorted(result.config.bits), curve, fdir))
        except (ValueError, ArithmeticError) as exc:
            theory_note = f"Theory curves not drawn: {exc}"
    else:
        theory_note = "Theory curves not drawn: pvq.theory is not available in this installation."
    add(F.fig_kurtosis_map(trows, vrows, ref_bits, fdir))
    add(F.fig_budget(result.budget_curve, result.allocation.summary(), fdir, overhead=result.config.count_overhead))
    add(F.fig_allocation(result.allocation.rows(), fdir, overhead=result.config.count_overhead))
    add(F.fig_layers(result.layer_rows, fdir))
    dep = getattr(result, "deployment", None)
    if dep is not None:
        from pvq.report._deploy_section import fig_deploy

        add(fig_deploy(dep, fdir))
    drawn = {p for f in figs.values() for p in (f.png, f.svg)}
    for old in [*fdir.glob("*.png"), *fdir.glob("*.svg")]:
        if old not in drawn:
            old.unlink()  # a figure of an earlier run in this folder (e.g. layers, now skipped)

    by_name: dict[str, dict[str, Any]] = {}
    for r in trows:
        d = by_name.setdefault(
            r["name"],
            {
                "name": r["name"],
                "kind": r["kind"],
                "shape": "x".join(map(str, r["shape"])),
                "numel": r["numel"],
                "kurtosis": r.get("kurtosis"),
            },
        )
        b = int(r["bits"])
        d[f"q{b}"] = r.get("quant_snr_db")
        d[f"p{b}"] = r.get("prune_snr_db")
    for v in result.verdicts:
        if v.bits == ref_bits and v.name in by_name:
            by_name[v.name].update({"winner": v.winner, "best": v.winner_label, "margin": v.margin_db})
    for n, o in result.allocation.choices.items():
        if n in by_name:
            by_name[n]["recommended"] = o.label
    bits = sorted(result.config.bits)
    cols = [
        ("name", "tensor"),
        ("kind", "kind"),
        ("shape", "shape"),
        ("numel", "weights"),
        ("kurtosis", "kurtosis"),
    ]
    cols += [(f"q{b}", f"INT{b} SNR") for b in bits] + [(f"p{b}", f"prune {b}b SNR") for b in bits]
    cols += [
        ("winner", f"winner @{ref_bits}b"),
        ("best", f"best option @{ref_bits}b"),
        ("margin", "margin dB"),
        ("recommended", "recommended"),
    ]

    a = result.allocation
    alloc_summary = [s for s in [a.summary(), *[b.summary() for b in result.baselines]]]
    for s in alloc_summary:
        s["families"] = ", ".join(f"{k}: {v}" for k, v in s["families"].items())
    kp_bits = next((r for r in result.summary if r["bits"] == ref_bits), result.summary[0])
    n_weights = sum(rec["numel"] for rec in result.records)
    n_total = max(int(getattr(result, "total_params", 0) or 0), n_weights)
    kpis = [
        (f"{len(result.records)}", "conv/linear tensors"),
        (f"{n_weights / 1e6:.2f} M" if n_weights >= 1e5 else f"{n_weights:,}", "weights analysed"),
        (f"{n_total / 1e6:.2f} M" if n_total >= 1e5 else f"{n_total:,}", "parameters in all"),
        (
            f"{kp_bits['wins'].get('quantization', 0)}/{kp_bits['tensors']}",
            f"tensors where INT{ref_bits} wins",
        ),
        (f"{a.snr_db:.1f} dB", f"model SNR, mixed @ {result.budget_bits:.3g} b/w"),
        (
            f"{statistics.median([float(r['kurtosis']) for r in trows if r.get('kurtosis') is not None]):.2f}",
            "median kurtosis",
        ),
    ]
    ver_html = (
        f"<p>{_md(verdict.headline)}</p><ul>"
        + "".join(f"<li>{_md(p)}</li>" for p in verdict.points)
        + "</ul>"
    )
    notes = [
        "Quantization: symmetric signed INT-b grid, one MSE-optimal scale per tensor (exact search).",
        "Pruning: magnitude pruning; FP16 values kept. Equal size against FP16: b bits per weight ↔ keep b/16 (paper); "
        + (
            "the headline verdict adds a 1-bit mask per weight for unstructured sparsity and ceil(log2 C(M,N))/M bits for N:M metadata."
            if result.config.count_overhead
            else "the headline verdict uses the same mask-free accounting (--no-overhead)."
        ),
        "Combinations: N:M (2:4, 1:4) pruning of INT-b values; 50 % magnitude pruning then INT-b quantization of the kept values.",
        *(
            [
                "Granularity table: INT-b per "
                + ", ".join(dict.fromkeys(str(r["granularity"]) for r in result.granularity_summary))
                + " with pvq apply's rtn scales (FP16), real bits from the recipe accounting (codes with row "
                "padding, scales, zero points); pruning at the same real bits pays its stored bitmask."
            ]
            if getattr(result, "granularity_summary", None)
            else []
        ),
        *([result.eval_note] if getattr(result, "eval_note", "") else []),
        "Model-level budget: multiple-choice knapsack over each tensor's options, solved as a 0/1 program (scipy.optimize.milp), "
        "minimising the sum of relative errors (every layer equally sensitive); each option costs the real bits of the "
        "recipe pvq apply stores for it (packing, mask padding, row offsets; the one FP16 scale per tensor left out).",
        *([theory_note] if theory_note else []),
        *result.notes,
        f"Time: {', '.join(f'{k} {v:.1f} s' for k, v in result.seconds.items())}.",
    ]
    from pvq.report._deploy_section import deploy_section_html
    from pvq.report._html import _figure

    deploy_html = deploy_section_html(
        dep,
        _figure(figs["deploy_pareto"]) if "deploy_pareto" in figs else "",
        getattr(result, "deploy_note", ""),
    )
    ctx = {
        "deploy_html": deploy_html,
        "title": f"pvq compare — {Path(str(result.config.source)).name}",
        "subtitle": f"Prune or quantize? Source: {result.source} · bits {bits[0]}-{bits[-1]} · budget {result.budget_bits:.3g} bits/weight",
        "verdict_html": ver_html,
        "kpis": kpis,
        "warnings": verdict.warnings,
        "bits_summary": result.summary,
        "allocation_summary": alloc_summary,
        "allocation_rows": a.rows(),
        "allocation_text_html": "<p class='note'>The recommended mix spends bits where they buy the most SNR: tensors that "
        "quantize badly (heavy tails) get more bits or are pruned, easy tensors get fewer. Stars mark the chosen budget.</p>",
        "natural_sparsity": natural_sparsity_rows(trows),
        "granularity_summary": list(getattr(result, "granularity_summary", []) or []),
        "tensor_rows": list(by_name.values()),
        "tensor_columns": cols,
        "layer_verdicts": [v.to_json() for v in result.layer_verdicts],
        "layers_note": result.layers_note,
        "config": {**result.config.to_json(), "pvq_version": version},
        "version": version,
        "notes": notes,
        "files": [str(Path(p).relative_to(out)) for p in files if Path(p).is_relative_to(out)],
    }
    page = out / "index.html"
    from pvq._io import atomic_write_text

    atomic_write_text(page, render_compare_html(ctx, figs))
    for p in [page, *files, *(f for fig in figs.values() for f in (fig.png, fig.svg))]:
        if Path(p).exists():  # config.json comes last (the commit marker), after the page
            Path(p).chmod(0o644)  # a report is meant to be shared
    return page
