"""Fig. 4: per-layer pruning vs quantization with exact optima.

``fig4``: one panel per bit-width, quantization SNR vs pruning SNR. Small dots are the units (one row
problem each), the large marker is the layer's pooled SNR (sum of signal over sum of error), and its
box spans the pooled heuristics (magnitude + refit, GPTQ) to the pooled exact optima (the paper: each
chunk a box from heuristic to bound). ``fig4_fractions``: per layer, the fraction of units where each
method's optimum is better, with 95 % intervals, against the bit-width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from pvq.report._save import save_png_svg  # noqa: E402

__all__ = ["plot_fig4", "plot_fig4_scatter", "plot_fig4_fractions", "plot_fig4_whole_rows"]


def _db(signal: float, error: float) -> float:
    return math.inf if error <= 0 else 10.0 * math.log10(signal / error)


def plot_fig4(
    summary: Sequence[Mapping[str, Any]], units: Sequence[Mapping[str, Any]], out_dir: Path
) -> list[Path]:
    """Both figures; ``summary``: :func:`pvq.experiments._fig4_stats.layer_summary` rows, ``units``: the
    unit records (``layer, bits, signal, quant_exact, prune_exact`` errors)."""
    return plot_fig4_scatter(summary, units, out_dir) + plot_fig4_fractions(summary, out_dir)


def _colors(layers: Sequence[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(layers)}


def plot_fig4_scatter(
    summary: Sequence[Mapping[str, Any]], units: Sequence[Mapping[str, Any]], out_dir: Path
) -> list[Path]:
    bits = sorted({int(s["bits"]) for s in summary})
    layers = list(dict.fromkeys(s["layer"] for s in summary))
    colors = _colors(layers)
    ncol = min(4, len(bits))
    nrow = (len(bits) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 4.0 * nrow), squeeze=False)
    for ax, b in zip(axes.flat, bits, strict=False):
        pts = []
        for u in units:
            if int(u["bits"]) != b or "quant_exact" not in u or "prune_exact" not in u:
                continue
            px, qy = _db(u["signal"], u["prune_exact"]), _db(u["signal"], u["quant_exact"])
            if math.isfinite(px) and math.isfinite(qy):
                pts.append((px, qy, colors[u["layer"]]))
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=[p[2] for p in pts], s=2, alpha=0.35,
                       linewidths=0, rasterized=True)  # fmt: skip
        xs = [v for p in pts for v in p[:2]]
        # axis limits from the bulk of the units: a few rows are solved to round-off (SNR ~300 dB)
        lims = list(np.percentile(xs, [0.5, 99.5])) if xs else []
        for s in summary:
            if int(s["bits"]) != b:
                continue
            px, qy = s["pooled_prune_exact_db"], s["pooled_quant_exact_db"]
            if not (math.isfinite(px) and math.isfinite(qy)):
                continue
            ph = s.get("pooled_prune_magnitude_db", px)
            qh = s.get("pooled_quant_gptq_db", s.get("pooled_quant_rtn_db", qy))
            col = colors[s["layer"]]
            ax.add_patch(Rectangle((ph, qh), px - ph, qy - qh, facecolor=col, alpha=0.3, edgecolor=col, lw=1))
            ax.plot(px, qy, "o", color=col, ms=7, mec="k", mew=0.6)
            lims += [px, qy, ph, qh]
        if lims:
            lo, hi = min(lims), max(lims)
            pad = 0.05 * (hi - lo) + 0.5
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(f"{b} bits")
        ax.set_xlabel("pruning SNR (dB)")
        ax.set_ylabel("quantization SNR (dB)")
    for ax in list(axes.flat)[len(bits) :]:
        ax.axis("off")
    handles = [Rectangle((0, 0), 1, 1, facecolor=colors[n], alpha=0.5) for n in layers]
    fig.legend(handles, layers, loc="lower center", ncol=min(4, len(layers)), fontsize=7, frameon=False)
    fig.suptitle(
        "Dots: units (row problems), exact optima. Large marker: pooled layer SNR; box: pooled heuristics "
        "(magnitude+refit, GPTQ) to pooled optima. Above the diagonal: quantization better.",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    return save_png_svg(fig, out_dir, "fig4")


def plot_fig4_fractions(summary: Sequence[Mapping[str, Any]], out_dir: Path) -> list[Path]:
    layers = list(dict.fromkeys(s["layer"] for s in summary))
    ncol = min(4, len(layers))
    nrow = (len(layers) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.9 * nrow), squeeze=False, sharey=True)
    for ax, layer in zip(axes.flat, layers, strict=False):
        rows = sorted((s for s in summary if s["layer"] == layer), key=lambda s: int(s["bits"]))
        b = [int(s["bits"]) for s in rows]
        for key, color, label, dx in (
            ("quant_win", "tab:blue", "quantization better", -0.12),
            ("prune_win", "tab:red", "pruning better", 0.0),
            ("tie", "tab:gray", "tie", 0.12),
        ):
            f = [s[f"{key}_frac"] for s in rows]
            lo = [s[f"{key}_frac"] - s[f"{key}_ci95"][0] for s in rows]
            hi = [s[f"{key}_ci95"][1] - s[f"{key}_frac"] for s in rows]
            ax.errorbar(
                [x + dx for x in b],
                f,
                yerr=[lo, hi],
                fmt="o",
                color=color,
                ms=3,
                capsize=2,
                lw=1,
                label=label,
            )
        n = rows[0]["units"] if rows else 0
        cert = all(s["certified"] == s["units"] for s in rows)
        heavy = " (heavy-tailed)" if rows and rows[0].get("role") == "heavy" else ""
        pop = f" of {rows[0]['population']}" if rows and "population" in rows[0] else ""
        ax.set_title(
            f"{layer}{heavy}\n{n} units{pop}" + (", all certified" if cert else ", NOT all certified"),
            fontsize=7,
        )
        ax.set_ylim(-0.05, 1.05)
        ax.set_xticks(b)
        ax.set_xlabel("bits", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(layers) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("fraction of units", fontsize=7)
    h, lab = axes.flat[0].get_legend_handles_labels()
    fig.legend(h, lab, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle("Which exact optimum is better, per unit (95 % Wilson intervals)", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95))
    return save_png_svg(fig, out_dir, "fig4_fractions")


def plot_fig4_whole_rows(
    summary: Sequence[Mapping[str, Any]], units: Sequence[Mapping[str, Any]], out_dir: Path
) -> list[Path]:
    """The whole-row panel (``fig4_whole_rows``): per method, each row's SNR with the paper's chunked
    optimum (x) against the whole row's (y); ``summary``/``units`` from
    :mod:`pvq.experiments._fig4_whole`."""
    layers = list(dict.fromkeys(s["layer"] for s in summary))
    colors = _colors(layers)
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 4.2), squeeze=False)
    for ax, (m, label) in zip(axes.flat, (("prune", "pruning"), ("quant", "quantization")), strict=True):
        xs, ys, cs = [], [], []
        for u in units:
            x, y = _db(u["signal"], u[f"{m}_chunked"]), _db(u["signal"], u[f"{m}_whole"])
            if math.isfinite(x) and math.isfinite(y):
                xs.append(x)
                ys.append(y)
                cs.append(colors[u["layer"]])
        ax.scatter(xs, ys, c=cs, s=12, alpha=0.7, linewidths=0)
        if xs:
            lo, hi = min(xs + ys), max(xs + ys)
            pad = 0.05 * (hi - lo) + 0.5
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
        ax.set_title(label)
        ax.set_xlabel("chunked optimum, SNR on the whole row (dB)")
        ax.set_ylabel("whole-row answer, SNR (dB)")
    changed = sum(int(s["winner_changed"]) for s in summary)
    total = sum(int(s["units"]) for s in summary)
    handles = [Rectangle((0, 0), 1, 1, facecolor=colors[n], alpha=0.7) for n in layers]
    fig.legend(handles, layers, loc="lower center", ncol=min(3, len(layers)), fontsize=7, frameon=False)
    fig.suptitle(
        f"Chunks of 32-36 inputs vs whole rows, same rows. Winner (pruning vs quantization) changed in "
        f"{changed}/{total} row problems.",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return save_png_svg(fig, out_dir, "fig4_whole_rows")
