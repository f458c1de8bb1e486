"""Fig. 4: quantization SNR vs pruning SNR per chunk, one panel per bit-width; each chunk is a box from the
heuristics to the exact optima of both methods (the paper: heuristic to bound)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from pvq.report._save import save_png_svg  # noqa: E402

__all__ = ["plot_fig4"]


def plot_fig4(rows: Sequence[Mapping[str, Any]], out_dir: Path) -> list[Path]:
    """Rows: chunk summaries (``layer, chunk, bits, method, solver, snr_db``, optional ``subset``)."""
    pts: dict[int, dict[tuple[str, int], dict[tuple[str, str], float]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for r in rows:
        solver = r["solver"] + ("@sdp" if r.get("subset") == "sdp" else "")
        pts[int(r["bits"])][(r["layer"], int(r["chunk"]))][(r["method"], solver)] = float(r["snr_db"])
    bits = sorted(pts)
    layers = sorted({k[0] for b in bits for k in pts[b]})
    colors = {name: plt.cm.tab10(i % 10) for i, name in enumerate(layers)}
    ncol = min(4, len(bits))
    nrow = (len(bits) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3.8 * nrow), squeeze=False)
    for ax, b in zip(axes.flat, bits, strict=False):
        lo, hi = float("inf"), float("-inf")
        for (layer, _chunk), c in pts[b].items():
            px, qy = c.get(("prune", "exact")), c.get(("quant", "exact"))
            if px is None or qy is None:
                continue
            ph = c.get(("prune", "magnitude"), px)
            qh = c.get(("quant", "gptq"), c.get(("quant", "rtn"), qy))
            col = colors[layer]
            ax.add_patch(
                Rectangle((ph, qh), px - ph, qy - qh, facecolor=col, alpha=0.25, edgecolor=col, lw=0.8)
            )
            ax.plot(px, qy, "o", color=col, ms=3)
            if ("quant", "sdp@sdp") in c:
                ax.plot(px, c[("quant", "sdp@sdp")], "v", color=col, ms=3, alpha=0.7)
            lo, hi = min(lo, ph, qh, px, qy), max(hi, px, qy)
        if lo < hi:
            pad = 0.05 * (hi - lo) + 0.5
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(f"{b} bits")
        ax.set_xlabel("pruning SNR (dB)")
        ax.set_ylabel("quantization SNR (dB)")
    for ax in list(axes.flat)[len(bits) :]:
        ax.axis("off")
    handles = [Rectangle((0, 0), 1, 1, facecolor=colors[n], alpha=0.4) for n in layers]
    fig.legend(handles, layers, loc="lower center", ncol=min(4, len(layers)), fontsize=7, frameon=False)
    fig.suptitle(
        "Per-chunk SNR: boxes span heuristic (magnitude / GPTQ) to exact optimum; v = SDP bound", fontsize=9
    )
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return save_png_svg(fig, out_dir, "fig4")
