"""Fig. 4: per-layer post-training pruning vs quantization with exact optima for both (paper §4).

For each layer the inputs are captured on real calibration data (sample photos for the CNNs, pydoc text
for MiniLM) and split into chunks of ``opt_dim`` inputs. The unit of comparison is one row problem
``(G_chunk, w_row)``: a depthwise layer's output channel (its whole 9- or 25-input row; every channel is
solved), or one output row over one chunk of a dense layer (a seeded simple random sample of
(chunk, row) pairs, without replacement). Every unit is solved at 2..8 bits by the heuristics and the
exact solvers of both methods; the paper's quantization bound (SDP, eq. 6) and its heuristic (SDP
rounding + 1-opt) run on the first units of each layer.

Per (layer, bits) the result gives the fraction of units where each method's exact optimum is better
(ties apart) with a 95 % Wilson interval, the pooled layer SNR ``10 log10(sum ||X w0||^2 / sum error)``
of every solver, and how many units were certified optimal by both exact solvers. Besides the paper's
layers, the highest-kurtosis layers of the bundled models are added by a rule
(:func:`pvq.experiments._fig4_select.heavy_tailed_layers`).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pvq.experiments import ReproduceConfig, SimpleResult, register
from pvq.experiments._fig4_stats import layer_summary, unit_records

__all__ = ["fig4", "FIG4_LAYERS", "Fig4Preset", "PRESETS", "OPT_DIM", "sample_units", "UNIT_COLUMNS"]

# (bundled model, layer as the paper names it); EfficientNet-Lite0 has no squeeze-excitation, so the
# paper's blocks.6.0.se.conv_expand is stood in for by blocks.6.0.conv_pw; MiniLM's attention output
# projection stands in for ViT's blocks.2.attn.proj
FIG4_LAYERS: tuple[tuple[str, str], ...] = (
    ("mobilenet_v2", "features.8.conv.0.0"),
    ("mobilenet_v2", "features.8.conv.1.0"),
    ("mobilenet_v2", "features.11.conv.0.0"),
    ("mobilenet_v2", "features.11.conv.1.0"),
    ("efficientnet_lite0", "blocks.1.1.conv_pw"),
    ("efficientnet_lite0", "blocks.6.0.conv_pw"),
    ("minilm", "encoder.layer.2.attention.output.dense"),
)
OPT_DIM = {"mobilenet_v2": 32, "efficientnet_lite0": 32, "minilm": 36}  # the paper: 32 (CNNs), 36 (ViT)
SOLVERS = {"prune": ("magnitude", "obs", "swap", "exact"), "quant": ("rtn", "gptq", "exact")}
SDP_SOLVERS = {"quant": ("sdp_round", "sdp")}  # compared with the exact optimum of the same unit


@dataclass(frozen=True)
class Fig4Preset:
    """``layers``: indices into :data:`FIG4_LAYERS`; ``units``: row problems sampled per dense layer
    (depthwise layers: every channel); ``sdp_units``: units per layer that also get the SDP bound and
    its rounding; ``batches``: calibration batches of 8; ``time_limit``: seconds per exact solve;
    ``heavy``: heavy-tailed layers added, chosen among the tensors of ``heavy_models``."""

    layers: tuple[int, ...]
    units: int
    sdp_units: int
    batches: int
    time_limit: float
    bits: tuple[int, ...]
    heavy: int
    heavy_models: tuple[str, ...]


PRESETS: dict[str, Fig4Preset] = {
    "smoke": Fig4Preset((0, 4, 6), 4, 0, 1, 5.0, (2, 4, 8), 1, ("mobilenet_v2",)),
    "cpu": Fig4Preset(
        tuple(range(7)), 96, 2, 4, 20.0, tuple(range(2, 9)), 2, ("mobilenet_v2", "efficientnet_lite0")
    ),
    "gpu": Fig4Preset(
        tuple(range(7)),
        384,
        4,
        8,
        60.0,
        tuple(range(2, 9)),
        4,
        ("mobilenet_v2", "efficientnet_lite0", "minilm"),
    ),  # fmt: skip
}

UNIT_COLUMNS = (
    "model", "layer", "role", "chunk", "row_id", "n", "bits", "signal",
    "quant_exact", "quant_exact_status", "quant_exact_gap", "prune_exact", "prune_exact_status", "prune_exact_gap",
    "prune_magnitude", "prune_obs", "prune_swap", "quant_rtn", "quant_gptq", "quant_sdp", "quant_sdp_round",
    "quant_seconds", "prune_seconds",
)  # fmt: skip


def sample_units(row_counts: list[int], units: int, depthwise: bool, seed: int) -> list[tuple[int, int]]:
    """(chunk index, row index) pairs to solve, in solving order.

    Depthwise layers (one row per chunk): every pair. Otherwise a simple random sample of ``units``
    pairs without replacement from all ``sum(row_counts)`` (every pair when there are no more).
    """
    pairs = [(c, r) for c, k in enumerate(row_counts) for r in range(k)]
    if depthwise or len(pairs) <= units:
        return pairs
    pick = np.random.default_rng(seed).choice(len(pairs), size=units, replace=False)
    return [pairs[i] for i in pick]


def _layer_seed(seed: int, layer: str) -> int:
    return int(np.random.SeedSequence([seed, zlib.crc32(layer.encode())]).generate_state(1)[0])


def _subproblems(probs: list[Any], pairs: list[tuple[int, int]]) -> list[Any]:
    by: dict[int, list[int]] = {}
    for c, r in pairs:
        by.setdefault(c, []).append(r)
    out = []
    for c, rows in sorted(by.items()):
        p = probs[c]
        idx = np.asarray(sorted(rows))
        out.append(replace(p, W=p.W[idx], row_ids=np.asarray(p.row_ids)[idx]))
    return out


def _units_csv(units: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(UNIT_COLUMNS)
    for u in units:
        w.writerow(
            [
                "" if u.get(k) is None else (repr(u[k]) if isinstance(u[k], float) else u[k])
                for k in UNIT_COLUMNS
            ]
        )
    return gzip.compress(buf.getvalue().encode(), mtime=0)


@register("fig4")
def fig4(cfg: ReproduceConfig) -> SimpleResult:
    from pvq._io import atomic_write_bytes
    from pvq.experiments._fig4_select import heavy_tailed_layers
    from pvq.layerwise import capture_layer_problems, run_layer_problems
    from pvq.models import calibration_batches, create_model, list_bundled

    pre = PRESETS[cfg.preset]
    scale = cfg.scale
    installed = {m.name for m in list_bundled() if m.installed}
    layers = [(*FIG4_LAYERS[i], "paper") for i in pre.layers]
    heavy_models = {m: OPT_DIM[m] for m in pre.heavy_models if m in installed}
    heavy = heavy_tailed_layers(heavy_models, pre.heavy, exclude={name for _, name, _ in layers})
    layers += [(h.model, h.layer, "heavy") for h in heavy]
    notes = [
        "Both methods solved exactly per row problem (branch-and-bound for pruning, sphere decoding for "
        "quantization); 'certified' counts units where both were proved optimal within the time limit.",
        "EfficientNet-Lite0 has no squeeze-excitation: blocks.6.0.conv_pw stands in for blocks.6.0.se.conv_expand; "
        "MiniLM (all-MiniLM-L6-v2) encoder.layer.2.attention.output.dense stands in for ViT blocks.2.attn.proj.",
        "Unit = one row problem (G of a chunk, one output row). Depthwise layers: every output channel (its whole "
        f"row). Other layers: a seeded simple random sample of {pre.units} (chunk, row) pairs without replacement "
        f"({OPT_DIM} inputs per chunk). Fractions: share of units whose exact optimum is better (ties, equal within "
        "a relative 1e-9, apart), 95 % Wilson score intervals. Pooled SNR: 10 log10(sum signal / sum error) over "
        "the units.",
        f"Preset {cfg.preset}: {pre.batches} calibration batch(es) of 8, exact time limit {pre.time_limit:.0f} s per "
        f"solve, the paper's SDP bound (eq. 6) and its rounding + 1-opt on the first {pre.sdp_units} unit(s) of "
        "each layer only.",
        f"Quantization scale: {scale} ("
        + (
            "one MSE-optimal scale per tensor, pvq.layerwise.layer_scale"
            if scale == "tensor"
            else "the published per-chunk grid search: 100 clipping thresholds i (max|w| + 0.5) / 100 on the chunk's "
            "weights, every row of it"
        )
        + ").",
        "Heavy-tailed layers: the "
        f"{pre.heavy} conv/linear tensors of highest Pearson kurtosis in {', '.join(pre.heavy_models)} whose row "
        "problems have at most 36 inputs: "
        + (
            "; ".join(f"{h.model} {h.layer} (kurtosis {h.kurtosis:.1f}, shape {h.shape})" for h in heavy)
            or "none"
        )
        + ".",
        "Calibration: random crops of scikit-learn's two sample photos (not ImageNet) / pydoc topic sentences.",
    ]
    missing = sorted({m for m, _, _ in layers} - installed)
    if missing:
        notes.append(f"Skipped (weights not installed): {', '.join(missing)}.")
    out = Path(cfg.out)
    cache = out / f"fig4_cache_{scale}.jsonl" if cfg.resume else None
    workers = 1 if cfg.preset == "smoke" else None
    units: list[dict[str, Any]] = []
    whole_units: list[dict[str, Any]] = []
    population: dict[str, int] = {}
    layer_meta = []
    for model_name, layer, role in layers:
        if model_name not in installed:
            continue
        model = create_model(model_name)
        batches = calibration_batches(model_name, pre.batches, seed=cfg.seed)
        probs = capture_layer_problems(
            model, layer, batches, opt_dim=OPT_DIM[model_name], bits=pre.bits, seed=cfg.seed, scale=scale
        )
        counts = [int(p.W.shape[0]) for p in probs]
        depthwise = len(probs) > 1 and all(k == 1 for k in counts)
        pairs = sample_units(counts, pre.units, depthwise, _layer_seed(cfg.seed, layer))
        population[layer] = sum(counts)
        layer_meta.append(
            {"model": model_name, "layer": layer, "role": role, "module": probs[0].layer, "chunks": len(probs),
             "n": probs[0].n, "population": sum(counts), "units": len(pairs), "depthwise": depthwise,
             "samples": probs[0].samples}
        )  # fmt: skip
        rows = run_layer_problems(
            _subproblems(probs, pairs), pre.bits, SOLVERS, pre.time_limit, cache=cache, workers=workers,
            seed=cfg.seed,
        )  # fmt: skip
        if pre.sdp_units:
            rows += run_layer_problems(
                _subproblems(probs, pairs[: pre.sdp_units]), pre.bits, SDP_SOLVERS, pre.time_limit,
                cache=cache, workers=workers, seed=cfg.seed,
            )  # fmt: skip
        for r in rows:
            r["layer"] = layer  # the name the figure uses (timm-style for EfficientNet-Lite0)
        units += unit_records(rows, model=model_name, role=role)
        if cfg.whole_rows and not depthwise:
            whole_units += _whole_rows(model, model_name, layer, batches, probs, cfg)
    order = {m["layer"]: i for i, m in enumerate(layer_meta)}  # the paper's layers first, then heavy-tailed
    summary = sorted(layer_summary(units, population), key=lambda s: (order[s["layer"]], s["bits"]))
    roles = {m["layer"]: m["role"] for m in layer_meta}
    for s in summary:
        s["role"] = roles[s["layer"]]
        s["scale"] = scale
        notes.append(_summary_note(s))
    sub = out / "fig4"
    sub.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(sub / "units.csv.gz", _units_csv(units))
    meta = {
        "preset": asdict(pre),
        "scale": scale,
        "layers": layer_meta,
        "heavy_tailed": [asdict(h) for h in heavy],
        "units_file": "units.csv.gz",
        "interval": "Wilson score, 95 %",
    }
    whole = None
    if cfg.whole_rows:
        from pvq.experiments._fig4_whole import WHOLE_PRESETS, whole_row_note, whole_row_summary

        wp = WHOLE_PRESETS[cfg.preset]
        whole = whole_row_summary(whole_units)
        meta["whole_rows"] = {"preset": asdict(wp), "summary": whole, "units": whole_units}
        notes.append(
            "Whole-row panel (--whole-rows): for each dense layer above whose rows have at most "
            f"{wp.max_n} inputs, {wp.units} sampled output rows at {', '.join(map(str, wp.bits))} bits, solved "
            "chunk by chunk (the paper) and as whole rows (warm-started with the chunked answer), both scored on "
            f"the whole row's output error; {wp.time_limit:.0f} s per exact solve; 'proved' from the solvers' "
            "certificates. Quantization scale: the layer's per-tensor MSE-optimal scale, for both answers."
        )
        notes += [whole_row_note(s) for s in whole]
    return SimpleResult(
        "fig4",
        summary,
        notes,
        meta,
        plotter=partial(_plot, units=units, whole=whole, whole_units=whole_units),
    )


def _whole_rows(
    model: Any, model_name: str, layer: str, batches: Any, probs: list[Any], cfg: ReproduceConfig
) -> list[dict[str, Any]]:
    """Unit records of the whole-row panel for one dense layer (:mod:`pvq.experiments._fig4_whole`); none
    when its rows are no longer than a chunk or longer than the preset's ``max_n``."""
    from pvq.experiments._fig4_whole import WHOLE_PRESETS, whole_row_units
    from pvq.layerwise import capture_layer_problems

    wp = WHOLE_PRESETS[cfg.preset]
    # the paper's chunks as input ranges of the whole row (capture makes them contiguous)
    chunks = [(int(p.inputs[0]), int(p.inputs[-1]) + 1) for p in probs]
    n = chunks[-1][1]
    if len(chunks) < 2 or n > wp.max_n:
        return []
    # the layer's per-tensor scale (capture's default): one grid for the chunked and the whole-row answers
    (whole,) = capture_layer_problems(
        model, layer, batches, opt_dim=None, bits=wp.bits, max_rows=wp.units, seed=_layer_seed(cfg.seed, layer),
    )  # fmt: skip
    recs = whole_row_units(whole.G, whole.W, whole.row_ids, whole.scales, chunks, wp.bits, wp.time_limit)
    for r in recs:
        r["model"], r["layer"] = model_name, layer
    return recs


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _summary_note(s: dict[str, Any]) -> str:
    lo, hi = s["quant_win_ci95"]
    parts = [
        f"{s['layer']} @ {s['bits']} bits, {s['units']} units"
        + (f" of {s['population']}" if "population" in s else "")
        + f": quantization optimum better in {s['quant_wins']} ({_pct(s['quant_win_frac'])}, 95 % CI "
        f"{_pct(lo)}-{_pct(hi)}), pruning optimum in {s['prune_wins']}, ties {s['ties']}"
        + (f" ({s['zero_signal']} with zero input signal)" if s["zero_signal"] else "")
        + "; "
        f"certified {s['certified']}/{s['units']}",
        f"pooled SNR quant {s['pooled_quant_exact_db']:.2f} dB vs prune {s['pooled_prune_exact_db']:.2f} dB",
    ]
    for key, label, ref in (
        ("pooled_prune_magnitude_db", "magnitude+refit", "pooled_prune_exact_db"),
        ("pooled_quant_gptq_db", "GPTQ", "pooled_quant_exact_db"),
    ):
        if key in s and math.isfinite(s[ref]):
            parts.append(f"{label} {s[ref] - s[key]:.2f} dB below its optimum")
    if "sdp_units" in s:
        parts.append(
            f"on {s['sdp_units']} unit(s) the paper's SDP bound is "
            f"{s['sdp_subset_quant_sdp_db'] - s['sdp_subset_quant_exact_db']:.2f} dB above the quantization optimum"
        )
    return "; ".join(parts) + "."


def _plot(
    result: SimpleResult,
    out_dir: Any,
    units: list[dict[str, Any]],
    whole: list[dict[str, Any]] | None = None,
    whole_units: list[dict[str, Any]] | None = None,
) -> list[Any]:
    from pvq.report._fig_layers import plot_fig4, plot_fig4_whole_rows

    paths = plot_fig4(result.rows(), units, out_dir)
    if whole is not None:
        paths += plot_fig4_whole_rows(whole, whole_units or [], out_dir)
    return paths
