"""Figures of the fine-tuning comparison: Table 1 as accuracy vs bits, Fig. 5 (prune + quant), Figs. 8-9."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pvq.report._save import save_png_svg  # noqa: E402

__all__ = ["plot_table1", "plot_fig5", "plot_fig8", "table1_markdown"]




def plot_table1(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Test accuracy vs bits (equal size: pruning at sparsity 1 - b/16) for QAT and pruning, one panel per model."""
    models = list(dict.fromkeys(r.get("model", "") for r in rows))
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 3.5), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        mrows = [r for r in rows if r.get("model", "") == model]
        for method, style in (("quant", "o-"), ("prune", "s--")):
            pts = sorted((r["bits"], r["value"]) for r in mrows if r["method"] == method)
            if pts:
                label = {"quant": "QAT (LSQ)", "prune": "pruning"}[method]
                ax.plot([b for b, _ in pts], [v for _, v in pts], style, label=label)
        orig = [r["value"] for r in mrows if r["method"] == "none"]
        if orig:
            ax.axhline(orig[0], color="gray", lw=1, ls=":", label="uncompressed")
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("bits (pruning: sparsity 1 - b/16)")
        ax.set_ylabel("test accuracy (%)")
        ax.invert_xaxis()
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    paths = save_png_svg(fig, out_dir, "table1")
    md = out_dir / "table1.md"
    md.write_text(table1_markdown(rows), encoding="utf-8")
    return [*paths, md]


def table1_markdown(rows: list[dict[str, Any]]) -> str:
    """The paper's Table 1 layout: one line per (model, method), test accuracy per bit-width (8b ... 2b)."""
    bits = sorted({r["bits"] for r in rows if r["method"] != "none"}, reverse=True)
    head = "| model | orig. | method | " + " | ".join(f"{b}b" for b in bits) + " |"
    lines = [head, "|" + " --- |" * (3 + len(bits))]
    for model in dict.fromkeys(r.get("model", "") for r in rows):
        mrows = [r for r in rows if r.get("model", "") == model]
        orig = next((f"{r['value']:.2f}" for r in mrows if r["method"] == "none"), "")
        for method in ("quant", "prune"):
            vals = {r["bits"]: r["value"] for r in mrows if r["method"] == method}
            if vals:
                cells = " | ".join(f"{vals[b]:.2f}" if b in vals else "" for b in bits)
                lines.append(f"| {model} | {orig} | {method} | {cells} |")
    return "\n".join(lines) + "\n"


def plot_fig5(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Accuracy vs average bits (bits x density incl. natural sparsity), one curve per base bit-width."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for bits in sorted({r["bits"] for r in rows if r["method"] in ("quant", "both")}, reverse=True):
        pts = sorted((r["avg_bits"], r["value"], r["prune_ratio"]) for r in rows
                     if r["bits"] == bits and r["method"] in ("quant", "both"))
        line = ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{bits} bits")[0]
        for x, y, pr in pts:
            if pr == 0:
                ax.plot([x], [y], "x", color=line.get_color(), ms=10, mew=2)
    # the cross marks each curve's unpruned point (quantization alone); say so in the legend
    ax.plot([], [], "x", color="gray", ms=8, mew=2, ls="", label="x: no pruning (quantization only)")
    ax.set_xlabel("average bits = bits x density")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_png_svg(fig, out_dir, "fig5")


def plot_fig8(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Per-layer SNR and CKA vs the original model over fine-tuning epochs (App. I, Figs. 8-9)."""
    runs = sorted({(r["method"], r["bits"]) for r in rows})
    paths: list[Path] = []
    if not runs:
        return paths
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    epochs = sorted({r["epoch"] for r in rows})
    for metric in ("snr_db", "cka"):
        fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.2), squeeze=False)
        for ax, (method, bits) in zip(axes[0], runs, strict=True):
            grid = [[next((r[metric] for r in rows if r["method"] == method and r["bits"] == bits
                           and r["layer"] == layer and r["epoch"] == e), float("nan")) for e in epochs]
                    for layer in layers]
            grid = [[v if isinstance(v, (int, float)) and math.isfinite(v) else float("nan") for v in line]
                    for line in grid]  # SNR is inf where nothing changed yet
            im = ax.imshow(grid, aspect="auto", cmap="viridis")
            ax.set_title(f"{method} {bits}b: {metric}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.set_xticks(range(len(epochs)), [str(e) for e in epochs], fontsize=7)
            ax.set_yticks(range(len(layers)), layers, fontsize=6)
            fig.colorbar(im, ax=ax)
        fig.tight_layout()
        paths += save_png_svg(fig, out_dir, f"fig8_{metric}")
    # Fig. 9: the last tracked layer over epochs, one line per run
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    last = layers[-1]
    for method, bits in runs:
        pts = sorted((r["epoch"], r["snr_db"], r["cka"]) for r in rows
                     if r["method"] == method and r["bits"] == bits and r["layer"] == last)
        axes[0].plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{method} {bits}b")
        axes[1].plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=f"{method} {bits}b")
    axes[0].set_ylabel(f"SNR (dB), {last}")
    axes[1].set_ylabel(f"CKA, {last}")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return paths + save_png_svg(fig, out_dir, "fig9")
