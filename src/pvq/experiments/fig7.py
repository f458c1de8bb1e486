"""Fig. 7 (App. D): does a layer's SNR predict the model's quality when that layer alone is compressed?

The paper pruned or quantized single layers of ResNet-18 and plotted each layer's output-activation SNR
against the full model's accuracy drop. Here, for each bundled model in the preset, every layer considered is
compressed ALONE with each calibration-free recipe (``rtn`` quantization at 2..8 bits per channel, ``magnitude``
pruning), and the model's change is measured on held-out data (:mod:`pvq.evaluate._sensitivity`): KL divergence
to the uncompressed model's outputs (image classifiers: class distributions over photo views; language models:
next-token distributions). Both proxies are recorded: the layer's OUTPUT SNR (the paper's App. D proxy,
measured on the same inputs) and its WEIGHT SNR (the paper's Sec. 3 proxy). Spearman's rank correlation
(``scipy.stats.spearmanr``; rank-based, so linear-scale and dB SNR give the same value) says how well each
proxy orders the layers; it is expected negative (higher SNR, lower KL).

The same measurements feed a per-layer plan (exact knapsack on the measured changes), validated by applying
it and compared with every uniform baseline at the same real bits (:func:`measured_plan`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pvq.experiments import ReproduceConfig, SimpleResult, register

__all__ = ["fig7", "FIG7_PRESETS", "Fig7Model", "spearman_summary"]


@dataclass(frozen=True)
class Fig7Model:
    """One model of a preset: ``layers`` = weight names (None: every conv/linear weight, lm_head excluded);
    ``n_views``/``max_tokens``/``max_sentences`` size the held-out probe; ``budgets`` the recipes whose uniform
    real bits are the budgets of the plan check."""

    name: str
    recipes: tuple[str, ...]
    layers: tuple[str, ...] | None = None
    n_views: int | None = None
    max_tokens: int = 256
    window: int = 128
    max_sentences: int = 64
    budgets: tuple[str, ...] = ()


_Q = ("int2:channel:rtn", "int3:channel:rtn", "int4:channel:rtn", "int8:channel:rtn")
_P = ("prune75:magnitude", "prune90:magnitude")


def _lm_blocks(blocks: tuple[int, ...]) -> tuple[str, ...]:
    proj = (
        "self_attn.q_proj",
        "self_attn.k_proj",
        "self_attn.v_proj",
        "self_attn.o_proj",
        "mlp.gate_proj",
        "mlp.up_proj",
        "mlp.down_proj",
    )
    return tuple(f"model.layers.{b}.{p}.weight" for b in blocks for p in proj)


FIG7_PRESETS: dict[str, tuple[Fig7Model, ...]] = {
    "smoke": (
        Fig7Model(
            "mobilenet_v2",
            ("int2:channel:rtn", "int4:channel:rtn", "prune75:magnitude"),
            layers=("features.0.0.weight", "features.1.conv.0.0.weight", "classifier.1.weight"),
            n_views=2,
            budgets=("int4:channel:rtn",),
        ),
    ),
    "cpu": (
        Fig7Model(
            "mobilenet_v2",
            _Q + _P,
            n_views=8,
            budgets=("int2:channel:rtn", "int3:channel:rtn", "int4:channel:rtn"),
        ),
        Fig7Model(
            "smollm2",
            _Q + _P,
            layers=_lm_blocks((0, 15, 29)),
            max_tokens=128,
            window=128,
            budgets=("int3:channel:rtn", "int4:channel:rtn"),
        ),
        Fig7Model("efficientnet_lite0", _Q + _P, n_views=8, budgets=("int3:channel:rtn", "int4:channel:rtn")),
        Fig7Model("minilm", _Q + _P, max_sentences=64, budgets=("int3:channel:rtn", "int4:channel:rtn")),
    ),
    "gpu": (
        Fig7Model(
            "mobilenet_v2",
            _Q + _P + ("int5:channel:rtn", "int6:channel:rtn", "prune50:magnitude"),
            budgets=_Q[:3],
        ),
        Fig7Model("efficientnet_lite0", _Q + _P, budgets=_Q[:3]),
        Fig7Model("minilm", _Q + _P, budgets=_Q[:3]),
        Fig7Model("smollm2", _Q + _P, max_tokens=1024, window=256, budgets=_Q[:3]),
    ),
}


def spearman_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model, proxy (output/weight SNR) and family subset (all, quantization, pruning): Spearman's rho of
    proxy vs metric, its p-value and n (points with a finite proxy and metric)."""
    from scipy.stats import spearmanr

    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        targets = [("value", mine[0]["metric"])]
        if any(r.get("agreement") is not None and math.isfinite(r["agreement"]) for r in mine):
            targets.append(("disagreement", "1-agreement"))
        for proxy in ("output_snr_db", "weight_snr_db"):
            for fam in ("all", "quantization", "pruning"):
                sub = [r for r in mine if fam == "all" or r["family"] == fam]
                for field, metric in targets:
                    pts = []
                    for r in sub:
                        x = r.get(proxy)
                        y = r.get("value") if field == "value" else 1.0 - r["agreement"]
                        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y):
                            pts.append((x, y))
                    if len(pts) < 3:
                        continue
                    res = spearmanr([p[0] for p in pts], [p[1] for p in pts])
                    out.append(
                        {
                            "model": model,
                            "proxy": proxy,
                            "family": fam,
                            "metric": metric,
                            "rho": float(res.statistic),
                            "p_value": float(res.pvalue),
                            "n": len(pts),
                        }
                    )
    return out


@register("fig7")
def fig7(cfg: ReproduceConfig) -> SimpleResult:
    import torch

    from pvq.evaluate._sensitivity import make_probe, measure_sensitivity, measured_plan, uniform_bits
    from pvq.models import load_bundled

    torch.manual_seed(cfg.seed)
    if cfg.device == "cpu":
        # many small forwards: on a shared machine one thread is fastest (2 threads ran ~10x slower here)
        torch.set_num_threads(1)
    work = Path(cfg.out) / "fig7"
    cache = work / "measurements.jsonl" if cfg.resume else None
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    plans: list[dict[str, Any]] = []
    timing: dict[str, float] = {}
    for spec in FIG7_PRESETS[cfg.preset]:
        ts = time.perf_counter()
        model, _ = load_bundled(spec.name)
        model.eval()
        probe = make_probe(
            model,
            spec.name,
            n_views=spec.n_views,
            max_tokens=spec.max_tokens,
            window=spec.window,
            max_sentences=spec.max_sentences,
        )
        sens = measure_sensitivity(model, probe, spec.recipes, layers=spec.layers, cache=cache)
        rows.extend({**r.to_json(), "probe": probe.data_key, "probe_n": probe.n} for r in sens)
        params = dict(model.named_parameters())
        shapes = {r.layer: tuple(params[r.layer].shape) for r in sens}
        for b in spec.budgets:
            budget = uniform_bits(b, shapes)
            d = measured_plan(model, probe, sens, budget, cache=cache)
            plans.append(
                {
                    "model": spec.name,
                    "budget_from": b,
                    **d.to_json(),
                    "never_worse": all(d.value <= u[2] for u in d.uniforms),
                }
            )
        timing[spec.name] = time.perf_counter() - ts
        del model
    summary = spearman_summary(rows)
    notes = [
        "Paper: ResNet-18 on ImageNet, accuracy drop vs linear-scale output SNR. Here: pvq's bundled models, the "
        "change in KL divergence to the uncompressed model's outputs on held-out data (image classifiers also "
        "1 - top-1 agreement) vs the layer's output SNR and its weight SNR. Spearman's rho is rank-based, so dB vs "
        "linear SNR does not change it.",
        "Only calibration-free recipes (per-channel RTN quantization, magnitude pruning), each layer compressed "
        "alone; output SNR is the compressed layer's output vs the uncompressed layer's on the same inputs.",
        "Layers: "
        + "; ".join(
            f"{s.name}: {'all conv/linear' if s.layers is None else f'{len(s.layers)} weights'}, "
            f"{len(s.recipes)} recipes"
            for s in FIG7_PRESETS[cfg.preset]
        ),
        "Plans: exact knapsack (HiGHS) on the measured single-layer changes at the real bits of each uniform "
        "budget recipe, then applied and measured; a uniform baseline that measures better is returned instead.",
    ]
    meta = {
        "preset": cfg.preset,
        "spearman": summary,
        "plans": plans,
        "seconds": time.perf_counter() - t0,
        "seconds_per_model": timing,
    }
    return SimpleResult("fig7", rows, notes, meta, plotter=_plot)


def _plot(result: SimpleResult, out_dir: Path) -> list[Path]:
    from pvq.report._fig_sensitivity import plot_fig7

    return plot_fig7(result.rows(), result.meta.get("spearman", []), out_dir)
