"""Figures of the theory section: Fig. 1 (Gaussian), Fig. 2 (truncated t vs kurtosis), Fig. 6 (kurtosis vs R)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

from pvq.report._save import save_png_svg  # noqa: E402

__all__ = ["plot_fig1", "plot_fig2", "plot_fig6"]

Q_COLOR, P_COLOR = "tab:blue", "tab:orange"




def plot_fig1(rows: Sequence[Mapping[str, Any]], curves: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Three panels: distributions after INT-b and pruning, density-weighted squared error, SNR vs bits."""
    w = np.asarray(curves["w"])
    pdf = np.asarray(curves["pdf"])
    levels = np.asarray(curves["levels"])
    prob = np.asarray(curves["level_prob"])
    t = float(curves["prune_threshold"])
    bits = int(curves["bits"])
    step = float(curves["scale"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))

    ax = axes[0]  # probabilities on bins of width Δ (the INT-b step) so both can share one axis
    ax.plot(w, pdf * step, color="gray", lw=1, ls="--", label="N(0, 1)")
    ax.vlines(levels, 0, prob, color=Q_COLOR, lw=2.5, label=f"INT{bits} (mass per level)")
    tails = np.where(np.abs(w) >= t, pdf * step, np.nan)
    ax.plot(w, tails, color=P_COLOR, lw=2, label=f"{curves['prune_sparsity']:.0%} pruning")
    spike = float(curves["prune_sparsity"])
    ax.vlines([0.0], 0, [min(spike, 0.3)], color=P_COLOR, lw=2.5)
    ax.annotate(
        f"mass {spike:.2f} at 0", (0.0, min(spike, 0.3)), xytext=(0.25, 0.27), color=P_COLOR, fontsize=8
    )
    ax.set_ylim(0, 0.32)
    ax.set_xlim(w[0], w[-1])
    ax.set_xlabel("w")
    ax.set_ylabel(f"probability (bins of width Δ = {step:.3f})")
    ax.set_title("distributions after compression")
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[1]
    qe, pe = np.asarray(curves["quant_err"]), np.asarray(curves["prune_err"])
    ax.fill_between(w, pe, color=P_COLOR, alpha=0.35)
    ax.plot(w, pe, color=P_COLOR, label=f"pruning (MSE {curves['prune_mse']:.4f})")
    ax.fill_between(w, qe, color=Q_COLOR, alpha=0.35)
    ax.plot(w, qe, color=Q_COLOR, label=f"INT{bits} (MSE {curves['quant_mse']:.4f})")
    ax.set_xlim(w[0], w[-1])
    ax.set_xlabel("w")
    ax.set_ylabel("(w - F(w))² p(w)")
    ax.set_title("squared error weighted by probability")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(0, 1.75 * float(pe.max()))
    inset = ax.inset_axes([0.6, 0.6, 0.38, 0.3])  # the quantization error, magnified
    inset.plot(w, qe, color=Q_COLOR, lw=1)
    inset.fill_between(w, qe, color=Q_COLOR, alpha=0.35)
    inset.set_xlim(w[0], w[-1])
    inset.set_ylim(0, 1.15 * float(qe.max()))
    inset.tick_params(labelsize=6)
    inset.set_title(f"INT{bits} only", fontsize=7)

    ax = axes[2]
    b = [r["bits"] for r in rows]
    ax.plot(
        b, [r["quant_snr_db"] for r in rows], "o-", color=Q_COLOR, label="quantization (INT, optimal scale)"
    )
    ax.plot(b, [r["prune_snr_db"] for r in rows], "s-", color=P_COLOR, label="magnitude pruning")
    for r in rows:
        if r["bits"] == bits:
            ax.annotate(
                f"{r['quant_snr_db']:.2f} dB",
                (bits, r["quant_snr_db"]),
                xytext=(4, -12),
                textcoords="offset points",
                fontsize=8,
                color=Q_COLOR,
            )
            ax.annotate(
                f"{r['prune_snr_db']:.2f} dB",
                (bits, r["prune_snr_db"]),
                xytext=(4, 6),
                textcoords="offset points",
                fontsize=8,
                color=P_COLOR,
            )
    ax.set_xticks(b)
    ax.set_xticklabels([f"{x}\n{100 * (1 - x / 16):g}%" for x in b], fontsize=8)
    ax.set_xlabel("bits per weight / pruning sparsity")
    ax.set_ylabel("SNR (dB)")
    ax.set_title("SNR at equal compression")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png_svg(fig, out_dir, "fig1")


def _by_bits(rows: Sequence[Mapping[str, Any]], key: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for b in sorted({int(r["bits"]) for r in rows}):
        pts = sorted((r["kurtosis"], r[key]) for r in rows if int(r["bits"]) == b)
        out[b] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    return out


def plot_fig2(
    rows: Sequence[Mapping[str, Any]], crossover: Mapping[str, float | None], out_dir: Path
) -> list[Path]:
    """Three panels vs kurtosis (log x): pruning SNR, quantization SNR, and the winner per (kurtosis, bits)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    cmap = plt.get_cmap("viridis")
    bits = sorted({int(r["bits"]) for r in rows})
    colors = {b: cmap(i / max(len(bits) - 1, 1)) for i, b in enumerate(bits)}
    for ax, key, title in (
        (axes[0], "prune_snr_db", "pruning (sparsity 1 - b/16)"),
        (axes[1], "quant_snr_db", "quantization (INT b, optimal scale)"),
    ):
        for b, (k, v) in _by_bits(rows, key).items():
            ax.plot(k, v, color=colors[b], label=f"{b} bits")
        ax.set_xscale("log")
        ax.set_xlabel("kurtosis (Pearson)")
        ax.set_ylabel("SNR (dB)")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
    axes[1].legend(fontsize=7, ncol=2)
    ylo = min(ax.get_ylim()[0] for ax in axes[:2])
    yhi = max(ax.get_ylim()[1] for ax in axes[:2])
    for ax in axes[:2]:
        ax.set_ylim(ylo, yhi)

    ax = axes[2]
    q = _by_bits(rows, "quant_snr_db")
    p = _by_bits(rows, "prune_snr_db")
    k = q[bits[0]][0]
    gap = np.array([q[b][1] - p[b][1] for b in bits])  # (n_bits, n_kurtosis)
    lim = float(np.max(np.abs(gap))) or 1.0
    mesh = ax.pcolormesh(k, bits, gap, cmap="RdBu", norm=TwoSlopeNorm(0.0, -lim, lim), shading="nearest")
    if gap.min() < 0 < gap.max():
        ax.contour(k, bits, gap, levels=[0.0], colors="k", linewidths=1.5)
    for b, kc in crossover.items():
        if kc is not None:
            ax.plot([kc], [int(b)], "k.", ms=6)
    box = {"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1.5}  # readable on any cell colour
    ax.text(0.97, 0.06, "pruning better", transform=ax.transAxes, ha="right", fontsize=9, color="darkred", bbox=box)
    ax.text(0.03, 0.92, "quantization better", transform=ax.transAxes, ha="left", fontsize=9, color="navy", bbox=box)
    ax.set_xscale("log")
    ax.set_yticks(bits)
    ax.set_xlabel("kurtosis (Pearson)")
    ax.set_ylabel("bits per weight")
    ax.set_title("trade-off: quant SNR - prune SNR")
    fig.colorbar(mesh, ax=ax, label="dB")
    fig.tight_layout()
    return save_png_svg(fig, out_dir, "fig2")


def plot_fig6(rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list[Path]:
    """Kurtosis of the truncated t vs the truncation range R (log-log); nu = 2 drawn bold."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for nu in sorted({float(r["nu"]) for r in rows}):
        pts = sorted((r["R"], r["kurtosis"]) for r in rows if float(r["nu"]) == nu)
        main = nu == 2.0
        ax.plot(
            [a for a, _ in pts],
            [b for _, b in pts],
            lw=2.2 if main else 1,
            alpha=1 if main else 0.6,
            color="k" if main else None,
            label=f"ν = {nu:g}",
        )
    ax.axhline(3.0, color="gray", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("truncation range R")
    ax.set_ylabel("kurtosis (Pearson)")
    ax.set_title("truncated Student-t")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png_svg(fig, out_dir, "fig6")
