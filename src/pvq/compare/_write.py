"""Write every number of a compare run as JSON and CSV (the report draws from the same rows)."""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pvq._io import atomic_write_text, to_jsonable

__all__ = ["write_rows", "write_outputs", "write_config", "natural_sparsity_rows", "PAPER_TABLE2"]

# The paper's Table 2: average natural sparsity (%) of INT-b quantized PyTorch model-zoo tensors.
PAPER_TABLE2 = {8: 13, 7: 16, 6: 20, 5: 27, 4: 35, 3: 46, 2: 59}


def _cell(v: Any) -> Any:
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(to_jsonable(v))
    return v


def write_rows(path_stem: Path, rows: Iterable[Mapping[str, Any]]) -> list[Path]:
    """``stem.json`` (array of objects) and ``stem.csv`` (union of keys, nested values as JSON)."""
    rows = [dict(r) for r in rows]
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(r.get(k)) for k in keys})
    js, cs = path_stem.with_suffix(".json"), path_stem.with_suffix(".csv")
    atomic_write_text(js, json.dumps(to_jsonable(rows), indent=1))
    atomic_write_text(cs, buf.getvalue())
    return [js, cs]


def natural_sparsity_rows(tensor_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per bit-width: mean share (%) of weights INT-b rounds to zero, over tensors (as the paper's Table 2)."""
    by: dict[int, list[float]] = defaultdict(list)
    for r in tensor_rows:
        if r.get("quant_sparsity") is not None:
            by[int(r["bits"])].append(float(r["quant_sparsity"]))
    return [
        {
            "bits": b,
            "avg_quant_sparsity_percent": 100 * statistics.fmean(v),
            "paper_percent": PAPER_TABLE2.get(b),
            "tensors": len(v),
        }
        for b, v in sorted(by.items(), reverse=True)
    ]


LAYER_FILES = ("layers", "layer_verdicts")


def write_outputs(result: Any, out: Path, verdict: Any, version: str) -> list[Path]:
    """All JSON/CSV files of a run under ``out``; returns their paths, ``config.json`` first.

    ``config.json`` is the commit marker of the folder: it is deleted here, before anything else is
    written, and written by :func:`write_config` once every file (the report included) is in place, so
    a run killed while writing leaves a folder without it rather than one that mixes two runs silently.
    Each file is written atomically (temp name, then rename)."""
    out = Path(out)
    (out / "config.json").unlink(missing_ok=True)
    paths: list[Path] = [out / "config.json"]
    trows = result.tensor_rows()
    paths += write_rows(out / "tensors", trows)
    paths += write_rows(out / "options", result.option_rows())
    paths += write_rows(out / "verdicts", [v.to_json() for v in result.verdicts])
    paths += write_rows(out / "verdicts_paper_accounting", [v.to_json() for v in result.verdicts_paper])
    paths += write_rows(out / "allocation", result.allocation.rows())
    paths += write_rows(out / "budget_curve", result.budget_curve)
    paths += write_rows(out / "natural_sparsity", natural_sparsity_rows(trows))
    by_gran = list(getattr(result, "granularity_summary", []) or [])
    if by_gran:  # quantization per granularity vs pruning at equal real bits per weight
        paths += write_rows(out / "granularity", by_gran)
    else:
        for suffix in (".json", ".csv"):
            (out / f"granularity{suffix}").unlink(missing_ok=True)
    if result.layer_rows:
        paths += write_rows(out / "layers", result.layer_rows)
        paths += write_rows(out / "layer_verdicts", [v.to_json() for v in result.layer_verdicts])
    else:  # a previous run's layer files would describe another run
        for stem in LAYER_FILES:
            for suffix in (".json", ".csv"):
                (out / f"{stem}{suffix}").unlink(missing_ok=True)
    if result.evaluation is not None:
        paths += write_rows(out / "eval", result.evaluation.rows())
    else:
        for suffix in (".json", ".csv"):
            (out / f"eval{suffix}").unlink(missing_ok=True)
    deployment = getattr(result, "deployment", None)
    if deployment is not None:
        paths += write_rows(out / "deploy", deployment.rows)
    else:
        for suffix in (".json", ".csv"):
            (out / f"deploy{suffix}").unlink(missing_ok=True)
    summary = {
        "source": result.source,
        "evaluation": result.evaluation.summary() if result.evaluation is not None else None,
        "eval_note": result.eval_note,
        "total_params": result.total_params,
        "verdict": verdict.to_json(),
        "by_bits": result.summary,
        "by_bits_paper_accounting": result.summary_paper,
        "by_granularity": by_gran,
        "budget_bits": result.budget_bits,
        "allocation": result.allocation.summary(),
        "baselines": [b.summary() for b in result.baselines],
        "layers_note": result.layers_note,
        "notes": result.notes,
        "seconds": result.seconds,
        "pvq_version": version,
        "deployment": deployment.summary() if deployment is not None else None,
        "deploy_note": getattr(result, "deploy_note", ""),
    }
    atomic_write_text(out / "summary.json", json.dumps(to_jsonable(summary), indent=1))
    paths.append(out / "summary.json")
    return paths


def write_config(result: Any, out: Path, version: str) -> Path:
    """Write ``out/config.json`` (the run's configuration): last, once every other output is in place."""
    path = Path(out) / "config.json"
    atomic_write_text(path, json.dumps({**result.config.to_json(), "pvq_version": version}, indent=1))
    return path
