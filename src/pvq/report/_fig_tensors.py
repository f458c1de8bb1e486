"""Figures of the per-tensor comparison: Fig. 3 (pruning vs quantization SNR of real tensors; where
pruning wins vs kurtosis) and Table 2 (natural sparsity per bit-width)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pvq.report._save import save_png_svg  # noqa: E402

__all__ = ["plot_fig3", "plot_table2"]

Q_COLOR, P_COLOR = "tab:blue", "tab:orange"




def plot_fig3(points: Sequence[Mapping[str, Any]], out_dir: Path) -> list[Path]:
    """Left: pruning SNR vs quantization SNR per tensor, coloured by bit-width (paper data: dots, pvq's
    bundled models: crosses). Right: per bit-width, densities of kurtosis where pruning / quantization win."""
    from pvq.tensors._kde import win_density

    pts = [p for p in points if math.isfinite(p["prune_snr_db"]) and math.isfinite(p["quant_snr_db"])]
    bits = sorted({int(p["bits"]) for p in pts})
    cmap = plt.get_cmap("viridis", max(len(bits), 2))
    fig = plt.figure(figsize=(15, 6.2))
    gs = fig.add_gridspec(2, 6, width_ratios=[2.4, 0.15, 1, 1, 1, 1])
    ax = fig.add_subplot(gs[:, 0])
    for i, b in enumerate(bits):
        for src, marker, size, alpha in (("paper", "o", 4, 0.35), ("pvq", "x", 14, 0.9)):
            sel = [p for p in pts if p["bits"] == b and p["source"] == src]
            if sel:
                ax.scatter(
                    [p["quant_snr_db"] for p in sel],
                    [p["prune_snr_db"] for p in sel],
                    s=size,
                    marker=marker,
                    color=cmap(i),
                    alpha=alpha,
                    linewidths=0.8,
                    label=(f"{b} bits" if src == "paper" else "pvq bundled")
                    if src == "paper" or b == bits[0]
                    else None,
                )
    lim = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
    ax.plot(lim, lim, color="k", lw=0.8)
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_xlabel("quantization SNR (dB)")
    ax.set_ylabel("pruning SNR (dB)")
    ax.set_title("real weight tensors (dots: paper model zoo, x: pvq bundled)")
    ax.text(0.03, 0.95, "pruning better", transform=ax.transAxes, va="top", fontsize=9)
    ax.text(0.97, 0.03, "quantization better", transform=ax.transAxes, ha="right", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()  # bit-widths in order, "pvq bundled" last
    order = sorted(range(len(labels)), key=lambda j: (labels[j] == "pvq bundled", j))
    ax.legend([handles[j] for j in order], [labels[j] for j in order], fontsize=8, loc="lower right",
              bbox_to_anchor=(1.0, 0.07), markerscale=2)
    kurt_all = np.array([p["kurtosis"] for p in pts], dtype=float)
    ok = np.isfinite(kurt_all) & (kurt_all > 0)
    grid = np.logspace(np.log10(kurt_all[ok].min()) - 0.05, np.log10(kurt_all[ok].max()) + 0.05, 300)
    for i, b in enumerate(bits[:8]):
        sub = fig.add_subplot(gs[i // 4, 2 + i % 4])
        sel = [p for p in pts if p["bits"] == b]
        wd = win_density(
            [p["kurtosis"] for p in sel], [p["prune_snr_db"] > p["quant_snr_db"] for p in sel], grid
        )
        sub.fill_between(
            wd.kurtosis, wd.p_quant, color=Q_COLOR, alpha=0.35, label=f"quant. better ({wd.n_quant})"
        )
        sub.fill_between(
            wd.kurtosis, wd.p_prune, color=P_COLOR, alpha=0.6, label=f"pruning better ({wd.n_prune})"
        )
        sub.set_xscale("log")
        sub.set_title(f"{b} bits", fontsize=9)
        sub.tick_params(labelsize=7)
        sub.legend(fontsize=7)
        if i % 4 == 0:
            sub.set_ylabel("density of tensors", fontsize=8)
        if i // 4 == 1 or i + 4 >= len(bits):
            sub.set_xlabel("kurtosis", fontsize=8)
    fig.suptitle(
        "Fig. 3: pruning vs quantization of real weight tensors (density of tensors vs kurtosis)", fontsize=11
    )
    return save_png_svg(fig, out_dir, "fig3", dpi=130)


def plot_table2(rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list[Path]:
    """Average natural sparsity (%) vs bit-width, one line per source and range search."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    keys = list(dict.fromkeys((r["source"], r["range_search"]) for r in rows))
    for src, rs in keys:
        sel = sorted(
            (r for r in rows if r["source"] == src and r["range_search"] == rs), key=lambda r: r["bits"]
        )
        style = (
            {"lw": 2.5, "color": "k"}
            if src == "paper Table 2"
            else {"lw": 1.2, "ls": "-" if rs == "grid" else "--"}
        )
        ax.plot(
            [r["bits"] for r in sel],
            [r["avg_quant_sparsity_percent"] for r in sel],
            marker="o",
            ms=3,
            label=f"{src} ({rs})",
            **style,
        )
    ax.set_xlabel("bits")
    ax.set_ylabel("average natural sparsity (%)")
    ax.set_title("Table 2: zeros in quantized weight tensors")
    ax.legend(fontsize=6.5)
    ax.grid(alpha=0.3)
    return save_png_svg(fig, out_dir, "table2", dpi=130)
