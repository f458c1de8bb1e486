"""Quantization at deployable granularities against magnitude pruning **at equal real bits per weight**.

The paper compares per-tensor INT-b with pruning at keep ratio b/16 and leaves out every overhead. Here a
*granularity* is how scales are shared: ``tensor`` (one scale), ``channel`` (one per output row), ``gN``
(one per N consecutive inputs of a row); ``uint:...`` adds an asymmetric grid with a zero point per scale.
For each granularity G and bit-width b the tensor is quantized as the recipe ``intB:G:rtn`` (``uintB``
with zero points), and its **real** bits per weight come from :func:`pvq.recipes.recipe_bits` (codes with
their row padding, FP16 scales, packed zero points). Pruning gets exactly that many bits: FP16 values
plus the bitmask (1 bit per weight, rows padded to bytes, int64 row offsets; the ``sparsity_metadata`` of
:func:`~pvq.recipes.recipe_bits` for an unstructured pruning recipe), so it keeps
``(real_bits - mask_bits) / 16`` of the weights, chosen by magnitude over the whole tensor as the paper
does (the lowest-error unstructured mask; per-row pruning, what ``pvq apply`` does, is never better).

Scales: :func:`pvq.apply._algorithms.quantize_rtn`, the same round-to-nearest as ``pvq apply`` (a grid of
32 + 8 clipping ratios per group, scales rounded to FP16 as a checkpoint stores them); the symmetric
``tensor`` granularity takes the sweep's own per-tensor SNR (its certified optimal, or the published grid,
scale), so that column is the paper's quantization with only the bits made real. Chosen by
measurement over :func:`pvq.tensors.per_channel_quant_sse` and a certified :func:`pvq.tensors.optimal_scale`
per group (``benchmarks/bench_granularity.py --scales``, int4 per channel and g128): 4-13x faster than
either on MobileNetV2 and MiniLM, within 0.05 % (MiniLM) and 2.8 % (MobileNetV2's 9-weight depthwise rows)
of the certified per-group optimum in squared error, and it handles zero points and FP16 scales, which the other two do not.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pvq.errors import PvqInputError

__all__ = [
    "Granularity",
    "GRANULARITY_BITS",
    "parse_granularities",
    "granular_columns",
    "granularity_summary",
]

GRANULARITY_BITS = range(2, 9)  # the recipe grammar's integer formats: int2..int8 / uint2..uint8
_SYNTAX = "tensor, channel or gN (N in 2..4096), optionally prefixed uint: for a zero point, e.g. channel,g128,uint:g128"


@dataclass(frozen=True)
class Granularity:
    """How quantization scales are shared. ``group_size``: 0 = per tensor, -1 = per output channel, N > 0 =
    groups of N inputs of a row (the recipe grammar's convention); ``zero_point``: asymmetric ``uint`` grid."""

    group_size: int
    zero_point: bool = False

    def __post_init__(self) -> None:
        if not (self.group_size in (0, -1) or 2 <= self.group_size <= 4096):
            raise ValueError(f"Granularity.group_size must be 0, -1 or 2..4096, got {self.group_size}")

    @property
    def scope(self) -> str:
        """``tensor``, ``channel`` or ``gN`` (the recipe's GRANULARITY field)."""
        return {0: "tensor", -1: "channel"}.get(self.group_size, f"g{self.group_size}")

    @property
    def label(self) -> str:
        """Canonical spelling, as ``--granularity`` takes it: ``channel``, ``uint:g128``."""
        return f"uint:{self.scope}" if self.zero_point else self.scope

    @property
    def key(self) -> str:
        """Prefix of this granularity's row columns: ``channel``, ``uint_g128``."""
        return self.label.replace(":", "_")

    def recipe(self, bits: int) -> str:
        """The recipe it stands for at ``bits``: ``int4:channel:rtn``, ``uint4:g128:rtn``."""
        return f"{'uint' if self.zero_point else 'int'}{int(bits)}:{self.scope}:rtn"


def _parse_one(item: str) -> Granularity:
    text = item.strip().lower()
    zp = False
    if ":" in text:
        fmt, _, text = text.partition(":")
        if fmt not in ("int", "uint"):
            raise PvqInputError(f"--granularity: {item!r}: unknown grid {fmt!r}; use {_SYNTAX}")
        zp = fmt == "uint"
    if text == "tensor":
        return Granularity(0, zp)
    if text == "channel":
        return Granularity(-1, zp)
    if (m := re.fullmatch(r"g(\d+)", text)) and 2 <= int(m.group(1)) <= 4096:
        return Granularity(int(m.group(1)), zp)
    raise PvqInputError(f"--granularity: {item!r} is not a granularity; use {_SYNTAX}")


def parse_granularities(items: str | Iterable[str | Granularity]) -> tuple[Granularity, ...]:
    """``"tensor,channel,g128"`` (or a sequence of such items / :class:`Granularity`) -> granularities,
    de-duplicated in order. PvqInputError naming ``--granularity`` on anything else."""
    parts: Iterable[str | Granularity] = items.split(",") if isinstance(items, str) else items
    out: dict[Granularity, None] = {}
    for p in parts:
        if isinstance(p, Granularity):
            out[p] = None
        elif str(p).strip():
            out[_parse_one(str(p))] = None
    return tuple(out)


# --------------------------------------------------------------------------- pure numerics


def _snr_db(energy: float, sse: float) -> float:
    if energy <= 0:
        return math.nan
    return math.inf if sse <= 0 else 10.0 * math.log10(energy / sse)


def granular_columns(
    w: torch.Tensor,
    smallest_squares: Any,
    bits: int,
    grans: Sequence[Granularity],
    tensor_quant_snr_db: float | None = None,
) -> dict[str, Any]:
    """Row columns of every granularity at ``bits`` (2..8; other bit-widths get none).

    ``w``: the weight, any shape (read as ``shape[0]`` rows of ``prod(shape[1:])`` inputs, as
    :func:`pvq.recipes.rows_and_inputs`). ``smallest_squares(k)``: sum of the k smallest squared
    weights (:meth:`pvq.tensors.SortedTensor.smallest_squares`: magnitude pruning's error from the
    tensor's one sort). Per granularity key K: ``K_bits`` (real bits per weight), ``K_quant_snr_db``,
    ``K_prune_snr_db`` (magnitude pruning at ``K_bits``, mask counted), ``K_prune_sparsity``, ``K_winner``
    (``quant``/``prune`` at equal real bits). SNRs in dB. ``tensor_quant_snr_db``: the sweep's own
    per-tensor INT-b SNR (its optimal or published-grid scale), used for the symmetric ``tensor``
    granularity instead of quantizing again, so that column is the paper's quantization at real bits; for
    ``uint:tensor`` it is a lower bound (the signed grid is the uint grid with zero point 2^(b-1)).
    """
    if bits not in GRANULARITY_BITS or not grans:
        return {}
    from pvq.apply._algorithms import quantize_rtn
    from pvq.recipes import parse_recipe, recipe_bits, rows_and_inputs
    from pvq.tensors._prune import num_pruned

    shape = [int(d) for d in w.shape] or [1]
    rows, cols = rows_and_inputs(shape)
    W = w.detach().to(torch.float32).reshape(rows, cols)
    W64 = W.to(torch.float64)
    energy = float(W64.square().sum())
    n = rows * cols
    # the bitmask's bits per weight (padding and row offsets included) do not depend on the sparsity
    mask_bits = recipe_bits("prune50:magnitude", shape).sparsity_metadata
    out: dict[str, Any] = {}
    for g in grans:
        recipe = parse_recipe(g.recipe(bits))
        assert recipe.quant is not None
        real = recipe_bits(recipe, shape).total
        if g == Granularity(0) and tensor_quant_snr_db is not None:
            q_snr = float(tensor_quant_snr_db)
        else:
            _, _, _, deq = quantize_rtn(W, recipe.quant)
            q_snr = _snr_db(energy, float((W64 - deq.to(torch.float64)).square().sum()))
            if g == Granularity(0, True) and tensor_quant_snr_db is not None:
                # zero point 2^(b-1) makes the uint grid the signed one: the certified signed scale is a
                # uint solution too, and rtn's clipping grid (>= 0.1 of the range) misses the hard clipping
                # that heavy-tailed tensors need (MiniLM output.dense, kurtosis 1585: 0.7 vs 11.4 dB at 4 bits)
                q_snr = max(q_snr, float(tensor_quant_snr_db))
        keep = min(max((real - mask_bits) / 16.0, 0.0), 1.0)
        k = num_pruned(n, 1.0 - keep)
        p_sse = float(smallest_squares(k))
        p_snr = _snr_db(energy, p_sse)
        out[f"{g.key}_bits"] = real
        out[f"{g.key}_quant_snr_db"] = q_snr
        out[f"{g.key}_prune_snr_db"] = p_snr
        out[f"{g.key}_prune_sparsity"] = k / n
        out[f"{g.key}_winner"] = "prune" if p_snr > q_snr else "quant"
    return out


def _wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of k/n (scipy's, as pvq.experiments uses it)."""
    if n == 0:
        return math.nan, math.nan
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def granularity_summary(
    rows: Iterable[Mapping[str, Any]], grans: Sequence[Granularity]
) -> list[dict[str, Any]]:
    """Per (granularity, bit-width): how often quantization beats magnitude pruning at equal real bits.

    Keys: ``granularity`` (label), ``recipe``, ``bits`` (code bits), ``tensors``, ``quant_wins`` (count),
    ``quant_win_fraction`` with its 95 % Wilson interval ``quant_win_low``/``quant_win_high``,
    ``mean_real_bits`` (weighted by tensor size), ``median_quant_snr_db``, ``median_prune_snr_db``
    (pruning at the same real bits, mask counted) and ``quant_wins_paper`` (against pruning at keep b/16
    with the mask free, the row's ``prune_snr_db``: the paper's accounting), ``prune_keeps_nothing``
    (tensors whose stored bitmask alone costs more than the quantized tensor, e.g. compressed-tensors' int64
    row offsets on 9-input depthwise rows: pruning keeps no weight there).
    """
    rows = list(rows)
    out: list[dict[str, Any]] = []
    for g in grans:
        qk, pk, bk = f"{g.key}_quant_snr_db", f"{g.key}_prune_snr_db", f"{g.key}_bits"
        by_bits: dict[int, list[Mapping[str, Any]]] = {}
        for r in rows:
            if qk in r:
                by_bits.setdefault(int(r["bits"]), []).append(r)
        for b in sorted(by_bits):
            rs = by_bits[b]
            n = len(rs)
            wins = sum(float(r[qk]) >= float(r[pk]) for r in rs)
            lo, hi = _wilson(wins, n)
            sizes = [float(r.get("numel", 1)) for r in rs]

            def med(key: str, rs: list[Mapping[str, Any]] = rs) -> float:
                vals = [float(r[key]) for r in rs if not math.isnan(float(r[key]))]
                return statistics.median(vals) if vals else math.nan

            out.append(
                {
                    "granularity": g.label,
                    "recipe": g.recipe(b),
                    "bits": b,
                    "tensors": n,
                    "quant_wins": wins,
                    "quant_win_fraction": wins / n,
                    "quant_win_low": lo,
                    "quant_win_high": hi,
                    "mean_real_bits": sum(float(r[bk]) * s for r, s in zip(rs, sizes, strict=True))
                    / sum(sizes),
                    "median_quant_snr_db": med(qk),
                    "median_prune_snr_db": med(pk),
                    "quant_wins_paper": sum(float(r[qk]) >= float(r["prune_snr_db"]) for r in rs),
                    # tensors whose stored bitmask alone exceeds the real bits: pruning keeps nothing
                    "prune_keeps_nothing": sum(float(r[f"{g.key}_prune_sparsity"]) >= 1.0 for r in rs),
                }
            )
    return out
