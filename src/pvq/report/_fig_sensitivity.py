"""Fig. 7: per-layer SNR (output and weight) against the model's measured change, one point per layer and
recipe, one column per model, with Spearman's rho and n in each panel title."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pvq.report._save import save_png_svg  # noqa: E402

__all__ = ["plot_fig7"]

_PROXIES = (("output_snr_db", "layer output SNR (dB)"), ("weight_snr_db", "weight SNR (dB)"))


def plot_fig7(
    rows: Sequence[Mapping[str, Any]], spearman: Sequence[Mapping[str, Any]], out_dir: Path
) -> list[Path]:
    """Rows: sensitivity points (``model, layer, recipe, family, metric, value, output_snr_db, weight_snr_db``);
    ``spearman``: :func:`pvq.experiments.fig7.spearman_summary` rows. Writes fig7.png/.svg."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    if not models:
        return []
    fig, axes = plt.subplots(
        2, len(models), figsize=(4.6 * len(models), 8.2), squeeze=False, layout="constrained"
    )
    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    colors = {rc: plt.cm.tab10(i % 10) for i, rc in enumerate(recipes)}
    for j, model in enumerate(models):
        mine = [r for r in rows if r["model"] == model]
        metric = mine[0]["metric"]
        for i, (proxy, label) in enumerate(_PROXIES):
            ax = axes[i][j]
            for rc in recipes:
                pts = [
                    (r[proxy], max(r["value"], 1e-9))
                    for r in mine
                    if r["recipe"] == rc and r.get(proxy) is not None and math.isfinite(r[proxy])
                ]
                if pts:
                    marker = "o" if "prune" not in rc else "^"
                    ax.scatter(
                        [p[0] for p in pts],
                        [p[1] for p in pts],
                        s=12,
                        color=colors[rc],
                        marker=marker,
                        label=rc,
                        alpha=0.8,
                    )
            ax.set_yscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel(f"model {metric} (uncompressed: 0)")
            s = next(
                (
                    x
                    for x in spearman
                    if x["model"] == model
                    and x["proxy"] == proxy
                    and x["family"] == "all"
                    and x["metric"] == metric
                ),
                None,
            )
            rho = f"Spearman rho {s['rho']:.2f} (n={s['n']})" if s else "too few points"
            ax.set_title(f"{model}\n{rho}", fontsize=9)
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle("Fig. 7: one layer compressed alone: its SNR vs the model's change")
    return save_png_svg(fig, Path(out_dir), "fig7")
