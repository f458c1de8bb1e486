"""The figures of a ``pvq compare`` report, drawn for one model (PNG + SVG).

Each ``fig_*`` takes plain rows (dicts, as written to the JSON files) and an output folder, and
returns a :class:`Figure` or ``None`` when there is nothing to draw.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

__all__ = [
    "Figure",
    "FAMILY_COLORS",
    "save",
    "fig_verdict_bits",
    "fig_scatter",
    "fig_kurtosis_map",
    "fig_theory",
    "fig_budget",
    "fig_allocation",
    "fig_layers",
    "fig_measured",
]

FAMILY_COLORS = {
    "quantization": "#1f77b4",
    "pruning": "#d62728",
    "n:m": "#ff7f0e",
    "quant+n:m": "#9467bd",
    "quant+prune": "#8c564b",
    "fp16": "#7f7f7f",
    "tie": "#bbbbbb",
}
_STYLE = {
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


@dataclass(frozen=True)
class Figure:
    """A figure written to disk: ``key`` (file stem), ``title``, ``caption`` (what it shows, in a sentence
    or two), and the paths of its PNG and SVG."""

    key: str
    title: str
    caption: str
    png: Path
    svg: Path


def save(fig: Any, out_dir: Path, key: str, title: str, caption: str) -> Figure:
    """Write ``fig`` as ``out_dir/key.png`` (150 dpi) and ``.svg``, each atomically; close it."""
    from pvq.report._save import save_png_svg

    png, svg = save_png_svg(fig, out_dir, key, dpi=150)
    return Figure(key, title, caption, png, svg)


def _finite(x: Any) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _cap(values: Sequence[float], hi: float = 80.0) -> np.ndarray:
    """Clip +inf SNRs (lossless) to a drawable ceiling."""
    a = np.asarray(values, dtype=float)
    return np.where(np.isposinf(a), hi, a)


def _overhead_words(overhead: bool) -> str:
    return "mask/metadata overhead counted" if overhead else "mask/metadata free, the paper's accounting"


def fig_verdict_bits(
    summary: Sequence[Mapping[str, Any]], out_dir: Path, overhead: bool = True
) -> Figure | None:
    """Stacked bars: share of tensors each family wins at each bit budget; medians of quant/prune SNR."""
    if not summary:
        return None
    with plt.rc_context(_STYLE):
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.4))
        bits = [int(r["bits"]) for r in summary]
        fams = [f for f in FAMILY_COLORS if any(f in r["wins"] for r in summary)]
        bottom = np.zeros(len(bits))
        for f in fams:
            share = np.array([r["wins"].get(f, 0) / r["tensors"] for r in summary])
            ax.bar(bits, share, bottom=bottom, color=FAMILY_COLORS[f], label=f, width=0.7)
            bottom += share
        close = [r["close_calls"] / r["tensors"] for r in summary]
        ax.plot(bits, close, "k.--", lw=1, label="close calls (< 1 dB)")
        ax.set(
            xlabel="bits per weight (budget)",
            ylabel="share of tensors",
            title="Which compression wins",
            ylim=(0, 1.02),
        )
        ax.set_xticks(bits)  # whole bit-widths only (a single budget drew -0.5..1.5 ticks)
        # below the axes, never over the bars (it covered the 2-3 bit bars)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
        q = [r.get("median_quant_snr_db") for r in summary]
        p = [r.get("median_prune_snr_db") for r in summary]
        ax2.plot(
            bits,
            [v if _finite(v) else np.nan for v in q],
            "o-",
            color=FAMILY_COLORS["quantization"],
            label="quantization",
        )
        ax2.plot(
            bits,
            [v if _finite(v) else np.nan for v in p],
            "s-",
            color=FAMILY_COLORS["pruning"],
            label="best pruning",
        )
        ax2.set(
            xlabel="bits per weight (budget)",
            ylabel="median tensor SNR (dB)",
            title="Median SNR at equal size",
        )
        ax2.set_xticks(bits)
        ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        fig.tight_layout()
        return save(
            fig,
            out_dir,
            "verdict_by_bits",
            "Verdict by bit budget",
            "Left: share of tensors for which each compression family gives the highest SNR at equal storage "
            f"({_overhead_words(overhead)}); dashed: share of close calls. Right: median tensor SNR of INT-b quantization and "
            "of the best pruning option of the same size.",
        )


def fig_scatter(rows: Sequence[Mapping[str, Any]], out_dir: Path) -> Figure | None:
    """Fig. 3 (left) for this model: pruning SNR vs quantization SNR per tensor, one colour per bit-width."""
    pts = [r for r in rows if _finite(r.get("quant_snr_db")) and r.get("prune_snr_db") is not None]
    if not pts:
        return None
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(5.2, 4.6))
        bits = sorted({int(r["bits"]) for r in pts})
        cmap = plt.get_cmap("viridis", max(len(bits), 2))
        for i, b in enumerate(bits):
            sel = [r for r in pts if int(r["bits"]) == b]
            ax.scatter(
                _cap([r["quant_snr_db"] for r in sel]),
                _cap([r["prune_snr_db"] for r in sel]),
                s=10,
                alpha=0.75,
                color=cmap(i),
                label=f"{b} bits",
            )
        lo = min(0.0, ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.text(
            hi * 0.97,
            hi * 0.9,
            "pruning better",
            ha="right",
            va="top",
            fontsize=8,
            color=FAMILY_COLORS["pruning"],
        )
        ax.text(
            hi * 0.97,
            lo + 0.05 * (hi - lo),
            "quantization better",
            ha="right",
            fontsize=8,
            color=FAMILY_COLORS["quantization"],
        )
        ax.set(
            xlabel="quantization SNR (dB)",
            ylabel="pruning SNR (dB)",
            title="Per-tensor SNR at equal compression",
        )
        ax.legend(fontsize=7, markerscale=1.5, loc="upper left")
        fig.tight_layout()
        return save(
            fig,
            out_dir,
            "snr_scatter",
            "Pruning vs quantization per tensor (paper Fig. 3, left)",
            "Each point is one weight tensor at one bit-width: INT-b quantization (optimal per-tensor scale) against "
            "magnitude pruning to sparsity 1 - b/16 (paper's accounting, mask for free). Above the diagonal pruning wins.",
        )


def fig_kurtosis_map(
    rows: Sequence[Mapping[str, Any]], verdicts: Sequence[Mapping[str, Any]], bits: int, out_dir: Path
) -> Figure | None:
    """Kurtosis of every tensor in model order, coloured by the family that wins it at ``bits`` (the verdict's
    winner: quantization, pruning, N:M, or pruning + quantization)."""
    kurt: dict[str, float] = {}
    for r in rows:
        if _finite(r.get("kurtosis")):
            kurt.setdefault(str(r["name"]), float(r["kurtosis"]))
    winner = {str(v["name"]): str(v["winner"]) for v in verdicts if int(v["bits"]) == bits and v.get("winner")}
    names = [n for n in kurt if n in winner]
    if not names:
        return None
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(9.5, 3.4))
        x = np.arange(len(names))
        y = np.array([kurt[n] for n in names])
        fams = [f for f in FAMILY_COLORS if any(winner[n] == f for n in names)]
        for f in fams:
            sel = np.array([winner[n] == f for n in names])
            ax.scatter(x[sel], y[sel], color=FAMILY_COLORS[f], s=22, edgecolor="k", linewidth=0.3, label=f"{f} wins")
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _pos: f"{v:g}")  # 6, not 6x10^0
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
        ax.axhline(3.0, color="gray", lw=0.8, ls=":")
        # the label sits right of the axes, where no point can cover it
        ax.annotate(
            "Gaussian (3)", (1.0, 3.0), xycoords=("axes fraction", "data"), xytext=(3, 0),
            textcoords="offset points", va="center", ha="left", fontsize=7, color="gray",
        )  # fmt: skip
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 0.85), frameon=False)
        ax.set(xlabel="tensor (model order)", ylabel="kurtosis (Pearson, log)", title="Kurtosis map")
        fig.tight_layout()
        return save(
            fig,
            out_dir,
            "kurtosis_map",
            "Kurtosis map",
            f"Pearson kurtosis of every tensor in model order, coloured by the option family with the highest SNR at "
            f"{bits} bits per weight (the verdict's winner at equal size). Heavy tails (high kurtosis) favour pruning "
            "(paper §3).",
        )


def fig_theory(
    kurtoses: Sequence[float],
    bits: Sequence[int],
    curve: Callable[[float, int], tuple[float, float]],
    out_dir: Path,
) -> Figure | None:
    """Fig. 1/2-style theory curves at this model's kurtosis values.

    ``curve(kurtosis, bits) -> (quant_snr_db, prune_snr_db)`` computes the expected SNRs of a distribution
    with that kurtosis (the CLI passes the truncated Student-t of ``pvq.theory``); one line pair per
    kurtosis value.
    """
    ks = [k for k in kurtoses if _finite(k)]
    if not ks or not bits:
        return None
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(5.6, 4.0))
        cmap = plt.get_cmap("plasma", len(ks) + 1)
        for i, k in enumerate(ks):
            vals = [curve(k, b) for b in bits]
            ax.plot(bits, [v[0] for v in vals], "o-", color=cmap(i), label=f"quant, K={k:.3g}")
            ax.plot(bits, [v[1] for v in vals], "s--", color=cmap(i), label=f"prune, K={k:.3g}")
        ax.set(
            xlabel="bits per weight (pruning at sparsity 1 - b/16)",
            ylabel="expected SNR (dB)",
            title="Theory at this model's kurtosis",
        )
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        return save(
            fig,
            out_dir,
            "theory_kurtosis",
            "Theory at this model's kurtosis (paper Figs. 1-2)",
            "Expected SNR of quantization (solid, MSE-optimal clipping) and magnitude pruning (dashed) for a Student-t "
            "(nu = 2) truncated to give the kurtosis of this model's tensors (10th, 50th and 90th percentile, and the maximum).",
        )


def fig_budget(
    curves: Sequence[Mapping[str, Any]],
    chosen: Mapping[str, Any] | None,
    out_dir: Path,
    overhead: bool = True,
) -> Figure | None:
    """Model SNR vs average bits per weight: the mixed allocation against uniform baselines."""
    if not curves:
        return None
    by: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for c in curves:
        if _finite(c.get("snr_db")):
            by[str(c["allocation"])].append((float(c["avg_bits"]), float(c["snr_db"])))
    if not by:
        return None
    style = {
        "mixed": ("k", "o-"),
        "all quantization": (FAMILY_COLORS["quantization"], "s--"),
        "all pruning": (FAMILY_COLORS["pruning"], "^--"),
    }
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(5.6, 4.0))
        for label, pts in by.items():
            pts.sort()
            color, fmt = style.get(label, ("gray", ".-"))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], fmt, color=color, label=label, ms=4)
        if chosen and _finite(chosen.get("snr_db")):
            ax.plot(
                [chosen["avg_bits"]],
                [chosen["snr_db"]],
                "*",
                color="gold",
                ms=16,
                mec="k",
                label="recommended",
                zorder=5,
            )
        ax.set(
            xlabel=f"average bits per weight ({_overhead_words(overhead)})",
            ylabel="model SNR (dB, mean relative error)",
            title="Size budget",
        )
        ax.legend(fontsize=8)
        fig.tight_layout()
        return save(
            fig,
            out_dir,
            "budget_curve",
            "Mixed allocation under a size budget",
            "Model-level SNR, -10 log10 of the mean relative error over tensors (every layer weighted equally), of the "
            "best mixed choice per tensor, against every tensor quantized (INT-b) or every tensor pruned, at each average size.",
        )


def fig_allocation(
    alloc_rows: Sequence[Mapping[str, Any]], out_dir: Path, overhead: bool = True
) -> Figure | None:
    """Bits per weight chosen for each tensor at the recommended budget, coloured by family."""
    if not alloc_rows:
        return None
    with plt.rc_context(_STYLE):
        n = len(alloc_rows)
        fig, ax = plt.subplots(figsize=(9.5, 3.2))
        x = np.arange(n)
        ax.bar(
            x,
            [r["bits_per_weight"] for r in alloc_rows],
            color=[FAMILY_COLORS.get(r["family"], "gray") for r in alloc_rows],
            width=0.85,
        )
        budget = alloc_rows[0].get("budget_bits")
        if _finite(budget):
            ax.axhline(float(budget), color="k", ls=":", lw=1)
            # right of the axes, at the budget's height: it overlapped the bars inside
            ax.annotate(
                f"budget {float(budget):.3g}", (1.0, float(budget)), xycoords=("axes fraction", "data"),
                xytext=(3, 0), textcoords="offset points", va="center", ha="left", fontsize=8,
            )  # fmt: skip
        handles = [
            plt.Rectangle((0, 0), 1, 1, color=FAMILY_COLORS[f])
            for f in FAMILY_COLORS
            if any(r["family"] == f for r in alloc_rows)
        ]
        labels = [f for f in FAMILY_COLORS if any(r["family"] == f for r in alloc_rows)]
        # above the axes, beside the title: inside, it covered the FP16 bars
        ax.legend(handles, labels, fontsize=7, ncol=len(labels), loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.set(
            xlabel="tensor (model order)", ylabel="bits per weight"
        )
        ax.set_title("Recommended storage per tensor", loc="left")
        ax.set_xlim(-0.6, n - 0.4)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.tight_layout()
        return save(
            fig,
            out_dir,
            "allocation",
            "Recommended storage per tensor",
            f"The option chosen for each tensor under the size budget ({_overhead_words(overhead)}); the dotted line "
            "is the budget (average bits per weight).",
        )


def fig_layers(layer_rows: Sequence[Mapping[str, Any]], out_dir: Path) -> Figure | None:
    """Fig. 4 for this model: per chunk, quantization SNR against pruning SNR, with the range from the
    worst heuristic to the best solution (and to the bound when one was computed)."""
    if not layer_rows:
        return None
    # (layer, bits, chunk, method) -> list of (kind, snr)
    acc: dict[tuple[str, int, Any, str], list[tuple[str, float]]] = defaultdict(list)
    for r in layer_rows:
        if _finite(r.get("snr_db")):
            acc[(str(r["layer"]), int(r["bits"]), r.get("chunk", 0), str(r["method"]))].append(
                (str(r.get("kind", "heuristic")), float(r["snr_db"]))
            )
    layers = sorted({k[0] for k in acc})
    if not layers:
        return None
    with plt.rc_context(_STYLE):
        ncol = min(len(layers), 3)
        nrow = math.ceil(len(layers) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.4 * nrow), squeeze=False)
        all_bits = sorted({k[1] for k in acc})
        cmap = plt.get_cmap("viridis", max(len(all_bits), 2))
        for ax, layer in zip(axes.flat, layers, strict=False):
            for (lay, b, chunk, method), vals in acc.items():
                if lay != layer or method != "quant":
                    continue
                other = acc.get((lay, b, chunk, "prune"))
                if not other:
                    continue
                qa = [v for k, v in vals if k != "bound"]
                pa = [v for k, v in other if k != "bound"]
                if not qa or not pa:
                    continue
                qb = [v for k, v in vals if k == "bound"]
                pb = [v for k, v in other if k == "bound"]
                c = cmap(all_bits.index(b))
                qx, py = max(qa), max(pa)
                ax.plot([min(qa), max(qb + qa)], [py, py], "-", color=c, lw=1, alpha=0.7)
                ax.plot([qx, qx], [min(pa), max(pb + pa)], "-", color=c, lw=1, alpha=0.7)
                ax.plot([qx], [py], "o", color=c, ms=3.5)
            lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
            hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.7)
            ax.set_title(layer, fontsize=8)
            ax.set(xlabel="quantization SNR (dB)", ylabel="pruning SNR (dB)")
        for ax in list(axes.flat)[len(layers) :]:
            ax.axis("off")
        handles = [plt.Line2D([], [], marker="o", ls="", color=cmap(i)) for i in range(len(all_bits))]
        fig.legend(
            handles,
            [f"{b} bits" for b in all_bits],
            fontsize=7,
            loc="lower center",
            ncol=len(all_bits),
            bbox_to_anchor=(0.5, -0.02),
        )
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        return save(
            fig,
            out_dir,
            "layerwise",
            "Per-layer output error (paper Fig. 4)",
            "Each point is one chunk of a layer's output-error problem at one bit-width: best quantization SNR against best "
            "pruning SNR (exact optimum where proved). Lines span from the worst heuristic to the best solution or bound.",
        )


_LINE_STYLES = ("o-", "s--", "^-.", "d:")


def fig_measured(
    rows: Sequence[Mapping[str, Any]], metric: str, direction: str, out_dir: Path
) -> Figure | None:
    """The model's measured quality (``metric``) vs real bits per weight: one line per recipe line (colour by
    family), the uncompressed baseline as a horizontal line, the recommended plan as a star. ``rows`` are
    :meth:`pvq.compare._eval_stage.EvalStage.rows`."""
    pts = [r for r in rows if r.get("metric") == metric and _finite(r.get("value"))]
    if not pts:
        return None
    by: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    base = plan = None
    for r in pts:
        if r["line"] == "baseline":
            base = r
        elif r["line"] == "recommended plan":
            plan = r
        else:
            by[(str(r["family"]), str(r["line"]))].append(r)
    per_family: dict[str, int] = defaultdict(int)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for (fam, line), rs in sorted(by.items()):
            rs = sorted(rs, key=lambda r: float(r["bits_per_weight"]))
            x = [float(r["bits_per_weight"]) for r in rs]
            y = [float(r["value"]) for r in rs]
            lo = [float(r["value"]) - float(r["ci_low"]) if _finite(r.get("ci_low")) else 0.0 for r in rs]
            hi = [float(r["ci_high"]) - float(r["value"]) if _finite(r.get("ci_high")) else 0.0 for r in rs]
            fmt = _LINE_STYLES[per_family[fam] % len(_LINE_STYLES)]
            per_family[fam] += 1
            ax.errorbar(x, y, yerr=[lo, hi], fmt=fmt, color=FAMILY_COLORS.get(fam, "gray"), label=line, ms=4, capsize=2)
        if base is not None:
            ax.axhline(float(base["value"]), color=FAMILY_COLORS["fp16"], ls=":", lw=1.2, label="uncompressed (16 bits)")
        if plan is not None:
            ax.plot(
                [float(plan["bits_per_weight"])], [float(plan["value"])], "*", color="gold", ms=16, mec="k",
                label="recommended plan", zorder=5,
            )  # fmt: skip
        if direction == "lower" and all(float(r["value"]) > 0 for r in pts):
            ax.set_yscale("log")
        ax.set(
            xlabel="real bits per weight (codes, scales, zero points, masks)",
            ylabel=f"{metric} ({direction} is better)",
            title="Measured quality vs size",
        )
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        return save(
            fig,
            out_dir,
            "measured_quality",
            "Measured quality vs real bits per weight",
            f"The whole model compressed with each option and measured on held-out data ({metric}, {direction} is "
            "better; bars: 95 % intervals where the metric is a proportion or a mean over examples). One line per "
            "way to compress (colour: quantization blue, pruning red, N:M orange, pruning + quantization brown), "
            "the uncompressed model dotted, the recommended plan as a star.",
        )
