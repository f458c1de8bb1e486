"""Everything measured for one weight tensor: quantization at every bit-width (grid or optimal range),
magnitude pruning at the equal-size sparsity (plain and "corrected" for natural sparsity), kurtosis,
and the optional extra columns. One sort of the tensor serves all of it."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pvq.errors import PvqInputError
from pvq.metrics import snr_db
from pvq.tensors._granular import Granularity, granular_columns, parse_granularities
from pvq.tensors._grids import int_grid_sse_f32, int_levels, levels_sse, published_deltas
from pvq.tensors._optimal import optimal_scale
from pvq.tensors._perchannel import per_channel_quant_sse
from pvq.tensors._prune import corrected_keep, nm_prune_sse, num_pruned, per_channel_prune_sse, rows_view
from pvq.tensors._reference import published_candidate_loss
from pvq.tensors._sorted import SortedTensor
from pvq.tensors._stats import kurtosis

__all__ = ["SweepConfig", "measure_tensor", "RANGE_SEARCHES"]

RANGE_SEARCHES = ("optimal", "grid")


@dataclass(frozen=True)
class SweepConfig:
    """What the sweep measures.

    bits: bit-widths (each compared with pruning at keep ratio b/16). range_search: ``optimal`` (the
    MSE-optimal scale, certified by branch and bound: rows carry ``quant_certified``) or ``grid`` (the published 100-candidate search, bit-exact float32).
    formats: extra quantization formats, either names with fixed bits (``nf4``, ``fp8_e4m3``,
    ``fp4_e2m1``: reported on the row of their bit-width) or families applied at every bit-width
    (``fp``, ``nf``, ``int-narrow``). per_channel: per-output-channel scales and per-channel pruning.
    nm_patterns: (N, M) structured sparsity, reported on the row whose bits equal 16 N / M.
    count_overhead: pruning pays a 1-bit mask per weight (keep ratio (b - 1)/16; corrected pruning
    (1 - natural sparsity) b/16 - 1/16) and N:M patterns their metadata (``prune_nmN_M_bits``).
    granularities: quantization at these granularities (:mod:`pvq.tensors._granular`: ``tensor``,
    ``channel``, ``gN``, ``uint:...``; bits 2..8) against magnitude pruning at equal *real* bits per
    weight (FP16 scales, zero points, bitmask counted): ``K_bits``, ``K_quant_snr_db``, ``K_prune_snr_db``,
    ``K_prune_sparsity``, ``K_winner`` per granularity key K. Empty (the default): the paper's columns only.
    """

    bits: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
    range_search: str = "optimal"
    formats: tuple[str, ...] = ()
    per_channel: bool = False
    nm_patterns: tuple[tuple[int, int], ...] = ()
    count_overhead: bool = False
    granularities: tuple[Granularity, ...] = ()

    def __post_init__(self) -> None:
        bits = tuple(int(b) for b in self.bits)
        if not bits:
            raise PvqInputError("bits: no bit-widths given")
        bad = [b for b in bits if not 2 <= b <= 16]
        if bad:
            raise PvqInputError(f"bits: bit-widths must be in 2..16, got {bad[0]}")
        object.__setattr__(self, "bits", bits)
        if self.range_search not in RANGE_SEARCHES:
            raise PvqInputError(f"range_search: must be optimal|grid, got {self.range_search!r}")
        nm = tuple((int(n), int(m)) for n, m in self.nm_patterns)
        for n, m in nm:
            if not 0 < n < m:
                raise PvqInputError(f"nm_patterns: need 0 < N < M, got {n}:{m}")
        object.__setattr__(self, "nm_patterns", nm)
        object.__setattr__(self, "formats", tuple(str(f).lower() for f in self.formats))
        for f in self.formats:
            _format_levels(f, 4)  # validates the name
        object.__setattr__(self, "granularities", parse_granularities(self.granularities))

    def to_json(self) -> dict[str, Any]:
        return {
            "bits": list(self.bits),
            "range_search": self.range_search,
            "formats": list(self.formats),
            "per_channel": self.per_channel,
            "nm_patterns": [f"{n}:{m}" for n, m in self.nm_patterns],
            "count_overhead": self.count_overhead,
            # only when asked for: a sweep without granularities keeps the key (and resumes) as before
            **({"granularity": [g.label for g in self.granularities]} if self.granularities else {}),
        }


_FAMILIES = ("fp", "nf", "int-narrow", "int")


def _format_levels(name: str, bits: int) -> tuple[np.ndarray, int] | None:
    """(levels, bits) of a format name at this bit-width, or None when the format has other bits."""
    from pvq import formats

    try:
        if name in _FAMILIES:
            fmt = formats.format_for_bits(name, bits)
        else:
            fmt = formats.get_format(name)
    except ValueError as exc:
        raise PvqInputError(f"formats: {exc}") from None
    if fmt.bits != bits:
        return None
    return fmt.levels(), fmt.bits


def _check(name: str, w: Any) -> np.ndarray:
    """The tensor as a flat float32 numpy array; PvqInputError for empty, non-numeric or NaN/Inf input."""
    try:
        if isinstance(w, torch.Tensor):
            if w.is_complex() or w.dtype == torch.bool:
                raise TypeError
            x = w.detach().to(torch.float32).cpu().reshape(-1).numpy()
        else:
            x = np.asarray(w, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        raise PvqInputError(f"tensor '{name}': not a real numeric array ({type(w).__name__})") from None
    if x.size == 0:
        raise PvqInputError(f"tensor '{name}': empty tensor (shape {tuple(getattr(w, 'shape', ()))})")
    finite = np.isfinite(x)
    if not finite.all():
        raise PvqInputError(f"tensor '{name}': {int(x.size - finite.sum())} NaN/Inf values")
    return x


def _grid_pick(st: SortedTensor, x32: np.ndarray, bits: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Index of the candidate the published search keeps (first lowest float32 loss)."""
    deltas = published_deltas(st.max_abs, bits)
    sse, zeros = int_grid_sse_f32(st, deltas, bits)
    best = float(sse.min())
    near = np.flatnonzero(sse <= best * (1 + 1e-5) + 1e-13 * st.energy)
    if near.size == 1:
        return int(near[0]), deltas, zeros
    # candidates within float32 rounding of each other: decide as the published code does
    flat = torch.from_numpy(x32)
    losses = [published_candidate_loss(flat, torch.tensor(deltas[i]), bits) for i in near]
    return int(near[int(np.argmin(losses))]), deltas, zeros


def _quant(
    st: SortedTensor, x32: np.ndarray, signal32: float, bits: int, range_search: str
) -> dict[str, Any]:
    n = st.n
    if range_search == "grid":
        i, deltas, zeros = _grid_pick(st, x32, bits)
        d = deltas[i]
        # final pass in float32, as published: clamp(round(w / d)) * d, squared error, float32 mean
        buf = np.divide(x32, d, dtype=np.float32)  # in place from here: one temporary buffer
        np.rint(buf, out=buf)
        np.clip(buf, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1, out=buf)
        np.multiply(buf, d, out=buf)
        np.subtract(x32, buf, out=buf)
        np.multiply(buf, buf, out=buf)
        mse = float(torch.from_numpy(buf).mean())  # the same float32 reduction as torch.mean
        nz = int(zeros[i])
        return {
            "quant_snr_db": snr_db(signal32, mse),
            "quant_mse": mse,
            "quant_scale": float(d),
            "quant_sparsity": nz / n,
            "quant_zeros": nz,
            "quant_candidate": i + 1,
        }
    levels = int_levels(bits)
    res = optimal_scale(st, levels, extra_candidates=published_deltas(st.max_abs, bits).astype(np.float64))
    if res.scale > 0:
        _, zeros, _ = levels_sse(st, np.array([res.scale]), levels)
        nz = int(zeros[0])
    else:
        nz = n
    return {
        "quant_snr_db": snr_db(st.energy, res.sse),
        "quant_mse": res.sse / n,
        "quant_scale": res.scale,
        "quant_sparsity": nz / n,
        "quant_zeros": nz,
        "quant_certified": res.certified,
    }


def _format_snr(st: SortedTensor, levels: np.ndarray) -> float:
    res = optimal_scale(st, levels)
    return snr_db(st.energy, res.sse)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run the float32 torch reductions single-threaded. The published MSE is a float32 mean whose last
    bits depend on torch's reduction order, i.e. on the thread count (up to ~2e-6 dB on MobileNetV2):
    one thread makes pvq's numbers the same on every machine (and cheap: the reductions are small)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure_tensor(
    name: str, w: torch.Tensor | np.ndarray, cfg: SweepConfig, kind: str | None = None
) -> list[dict[str, Any]]:
    """One row per bit-width for tensor ``w`` (DESIGN.md tensors keys plus extras).

    Raises PvqInputError for empty or non-finite tensors. Constant tensors are fine: kurtosis is nan,
    SNRs are inf where the error is zero; all-zero tensors give nan SNRs (0/0).
    """
    with _one_torch_thread():
        return _measure(name, w, cfg, kind)


def _measure(name: str, w: Any, cfg: SweepConfig, kind: str | None) -> list[dict[str, Any]]:
    x32 = _check(name, w)
    shape = [int(d) for d in w.shape] if hasattr(w, "shape") else [x32.size]
    # the published float32 mean of w^2 (grid only), before the sort: one float32 temporary at a time
    signal32 = float(torch.from_numpy(x32 * x32).mean()) if cfg.range_search == "grid" else math.nan
    st = SortedTensor.from_tensor(x32)
    n = st.n
    kurt = kurtosis(st.values)
    if cfg.range_search != "grid":
        signal32 = st.energy / n
    wt = w if isinstance(w, torch.Tensor) else torch.from_numpy(x32.reshape(shape))
    rows_pc = rows_view(wt) if cfg.per_channel else None
    base = {"name": name, "shape": shape}
    if kind is not None:
        base["kind"] = kind
    out = []
    for b in cfg.bits:
        q = _quant(st, x32, signal32, b, cfg.range_search)
        keep = (b - 1) / 16 if cfg.count_overhead else b / 16
        s_prune = 1.0 - max(keep, 0.0)
        p_sse = float(st.smallest_squares(num_pruned(n, s_prune)))
        keep_c = corrected_keep(q["quant_zeros"], n, b, paper_float32=cfg.range_search == "grid")
        if cfg.count_overhead:
            keep_c = max(0.0, keep_c - 1 / 16)
        pc_sse = float(st.smallest_squares(num_pruned(n, 1.0 - keep_c)))
        row: dict[str, Any] = {
            **base,
            "bits": b,
            "kurtosis": kurt,
            "quant_snr_db": q["quant_snr_db"],
            "quant_sparsity": q["quant_sparsity"],
            "prune_snr_db": snr_db(st.energy, p_sse),
            "prune_snr_corrected_db": snr_db(st.energy, pc_sse),
            "numel": n,
            "range_search": cfg.range_search,
            "quant_mse": q["quant_mse"],
            "quant_scale": q["quant_scale"],
            "prune_sparsity": num_pruned(n, s_prune) / n,
            "prune_mse": p_sse / n,
            "prune_sparsity_corrected": num_pruned(n, 1.0 - keep_c) / n,
            "prune_mse_corrected": pc_sse / n,
            "signal_power": st.energy / n,
        }
        for k in ("quant_candidate", "quant_certified"):
            if k in q:
                row[k] = q[k]
        row["winner"] = "prune" if row["prune_snr_db"] > row["quant_snr_db"] else "quant"
        row["winner_corrected"] = "prune" if row["prune_snr_corrected_db"] > row["quant_snr_db"] else "quant"
        for f in cfg.formats:
            got = _format_levels(f, b)
            if got is not None:
                row[f"quant_{f}_snr_db"] = _format_snr(st, got[0])
        if rows_pc is not None:
            sse_pc, _, _ = per_channel_quant_sse(rows_pc, int_levels(b))
            row["quant_per_channel_snr_db"] = snr_db(st.energy, sse_pc)
            row["prune_per_channel_snr_db"] = snr_db(st.energy, per_channel_prune_sse(rows_pc, s_prune))
        for nk, m in cfg.nm_patterns:
            if not math.isclose(16 * nk / m, b):
                continue
            from pvq.formats import NM, storage_bits_per_weight

            row[f"prune_nm{nk}_{m}_snr_db"] = snr_db(st.energy, nm_prune_sse(wt, nk, m))
            row[f"prune_nm{nk}_{m}_bits"] = storage_bits_per_weight(
                16, NM(nk, m), overhead=cfg.count_overhead
            )
        row.update(granular_columns(wt, st.smallest_squares, b, cfg.granularities, q["quant_snr_db"]))
        out.append(row)
    return out
