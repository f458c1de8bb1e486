"""``sweep(weights, ...)``: the per-tensor comparison over a whole model, resumable, tensor by tensor."""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pvq._io import append_jsonl, atomic_write_text, read_jsonl
from pvq._progress import progress
from pvq.errors import PvqInputError
from pvq.tensors._granular import Granularity, granularity_summary
from pvq.tensors._measure import SweepConfig, measure_tensor

__all__ = ["SweepResult", "sweep", "as_weights", "summarize"]


@dataclass
class SweepResult:
    """Rows of a sweep (one per tensor and bit-width) plus where they came from."""

    row_list: list[dict[str, Any]]
    config: SweepConfig
    source: str = "<mapping>"
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    resumed: int = 0  # tensors taken from a previous partial run

    def rows(self) -> list[dict[str, Any]]:
        return self.row_list

    def names(self) -> list[str]:
        return list(dict.fromkeys(r["name"] for r in self.row_list))

    def summary(self) -> list[dict[str, Any]]:
        """Per bit-width: tensors, fraction where pruning wins, median SNRs, mean natural sparsity."""
        return summarize(self.row_list)

    def granularity_summary(self) -> list[dict[str, Any]]:
        """Per granularity and bit-width: how often quantization beats pruning at equal real bits, with a
        95 % Wilson interval (empty when the sweep measured no granularities)."""
        return granularity_summary(self.row_list, self.config.granularities)

    def to_json(self) -> dict[str, Any]:
        out = {
            "source": self.source,
            "config": self.config.to_json(),
            "notes": self.notes,
            "seconds": self.seconds,
            "summary": self.summary(),
            "rows": self.row_list,
        }
        if self.config.granularities:
            out["by_granularity"] = self.granularity_summary()
        return out


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per bit-width summary of sweep rows (pruning-win fractions, median SNRs, mean natural sparsity)."""
    by_bits: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_bits.setdefault(int(r["bits"]), []).append(r)
    out = []
    for b in sorted(by_bits):
        rs = by_bits[b]

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
            vals = [float(r[key]) for r in rs if not math.isnan(float(r[key]))]
            return statistics.median(vals) if vals else math.nan

        n = len(rs)
        out.append(
            {
                "bits": b,
                "tensors": n,
                "prune_wins": sum(r["prune_snr_db"] > r["quant_snr_db"] for r in rs) / n,
                "prune_corrected_wins": sum(r["prune_snr_corrected_db"] > r["quant_snr_db"] for r in rs) / n,
                "median_quant_snr_db": med("quant_snr_db"),
                "median_prune_snr_db": med("prune_snr_db"),
                "median_prune_snr_corrected_db": med("prune_snr_corrected_db"),
                "mean_quant_sparsity": sum(float(r["quant_sparsity"]) for r in rs) / n,
            }
        )
    return out


def as_weights(weights: Any) -> tuple[Mapping[str, Any], str, list[str]]:
    """Normalise the ``weights`` argument: a Mapping (a WeightSet is one), an nn.Module, or a source
    that :func:`pvq.models.load_weights` accepts (a bundled name or a path)."""
    from pvq import models

    if isinstance(weights, Mapping):
        return (
            weights,
            str(getattr(weights, "source", "<mapping>")),
            list(getattr(weights, "notes", []) or []),
        )
    if isinstance(weights, torch.nn.Module):
        ws = models.from_module(weights)
        return ws, ws.source, list(ws.notes)
    if isinstance(weights, (str, Path)):
        load = getattr(models, "load_weights", None)
        if load is None:
            raise PvqInputError(f"{weights}: loading files needs pvq.models.load_weights (not available)")
        ws = load(weights)
        return ws, str(getattr(ws, "source", weights)), list(getattr(ws, "notes", []) or [])
    raise PvqInputError(
        f"weights: expected a mapping name -> tensor, an nn.Module or a path, got {type(weights).__name__}"
    )


def _kind(ws: Mapping[str, Any], name: str) -> str | None:
    info = getattr(ws, "info", None)
    if info is None:
        return None
    try:
        return info(name).kind
    except (KeyError, AttributeError):
        return None


def _resume_rows(path: Path, cfg: SweepConfig) -> dict[str, list[dict[str, Any]]]:
    """Rows already measured under the same configuration (a different configuration starts afresh)."""
    cfg_path = path.with_suffix(".config.json")
    want = cfg.to_json()
    if path.exists() and cfg_path.exists():
        try:
            have = json.loads(cfg_path.read_text())
        except (OSError, json.JSONDecodeError):
            have = None
        if have != want:
            path.unlink()
    elif path.exists():
        path.unlink()
    atomic_write_text(cfg_path, json.dumps(want))
    done: dict[str, list[dict[str, Any]]] = {}
    for rec in read_jsonl(path):
        if isinstance(rec, dict) and "name" in rec and isinstance(rec.get("rows"), list):
            done[rec["name"]] = rec["rows"]
    return done


def sweep(
    weights: Any,
    bits: Sequence[int] | range = range(2, 9),
    range_search: str = "optimal",
    formats: Sequence[str] = (),
    per_channel: bool = False,
    nm_patterns: Sequence[tuple[int, int]] = (),
    count_overhead: bool = False,
    resume_path: str | Path | None = None,
    granularities: str | Sequence[str | Granularity] = (),
) -> SweepResult:
    """Quantization vs magnitude pruning for every tensor of ``weights`` at every bit-width.

    weights: mapping name -> tensor (any shape; a :class:`pvq.models.WeightSet` streams its tensors
    one at a time), an ``nn.Module`` (its conv/linear weights) or a source for ``pvq.models.load_weights``.
    Returns a :class:`SweepResult`; ``rows()`` carry the DESIGN.md keys (name, shape, bits, kurtosis
    (Pearson), quant_snr_db, quant_sparsity, prune_snr_db, prune_snr_corrected_db; SNRs in dB) plus
    MSEs, scale, winner and the extra columns asked for. ``resume_path``: a JSON-lines file that
    receives each tensor's rows as soon as they are measured; tensors already in it are skipped.
    ``granularities``: e.g. ``"tensor,channel,g128,uint:g128"``: quantization at each (real bits per
    weight from :func:`pvq.recipes.recipe_bits`) against magnitude pruning at the same real bits, columns
    ``K_*`` per granularity key K (see :class:`SweepConfig`); part of the resume key.
    """
    cfg = SweepConfig(
        bits=tuple(bits),
        range_search=range_search,
        formats=tuple(formats),
        per_channel=per_channel,
        nm_patterns=tuple(nm_patterns),
        count_overhead=count_overhead,
        granularities=tuple(granularities) if not isinstance(granularities, str) else granularities,  # type: ignore[arg-type]
    )
    ws, source, notes = as_weights(weights)
    names = list(ws.keys())
    if not names:
        raise PvqInputError(f"{source}: no tensors to sweep")
    path = Path(resume_path) if resume_path is not None else None
    done = _resume_rows(path, cfg) if path is not None else {}
    resumed = sum(1 for n in names if n in done)
    todo = [n for n in names if n not in done]
    t0 = time.perf_counter()
    for name in progress(todo, total=len(todo), desc="tensors"):
        rows = measure_tensor(name, ws[name], cfg, kind=_kind(ws, name))  # loads one tensor at a time
        if path is not None:
            append_jsonl(path, [{"name": name, "rows": rows}])
        done[name] = rows
    rows_all = [r for n in names for r in done[n]]
    capped = sum(1 for r in rows_all if r.get("quant_certified") is False)
    if capped:
        notes = [
            *notes,
            f"{capped} of {len(rows_all)} rows: the optimal-scale search stopped at its node cap; "
            "their quantization error is near-optimal, not certified (quant_certified = false)",
        ]
    return SweepResult(rows_all, cfg, source, notes, time.perf_counter() - t0, resumed)
