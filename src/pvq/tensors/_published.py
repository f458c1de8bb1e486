"""The paper's published per-tensor results (44 PyTorch model-zoo models, 2,651 conv/linear tensors,
2-8 bits), as released with its code (``plots_data/weights_sqnr``; license in ``_data/NOTICE``).

pvq ships them as one compact table (``_data/model_zoo_weights_sqnr.csv.gz``, converted losslessly from
the JSON files by :func:`convert_json_dir`). Mind the conventions of that data: ``sample_kurtosis`` is
EXCESS kurtosis (converted here to Pearson, normal = 3); the pruning MSE was computed in FP16, so tiny
errors rounded to 0 and a few hundred pruning SNRs are infinite (``prune_fp16_zero``); the grid search
had an absolute +0.5 margin; the kurtosis was computed on FP16 weights and is -3 (excess) for 139
tensors whose fourth powers underflowed (``kurtosis_fp16_invalid``; pvq sets those to nan). Natural sparsity averaged over the tensors gives the paper's Table 2.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from pathlib import Path
from typing import Any

from pvq.errors import PvqInputError

__all__ = ["BUNDLED", "PAPER_TABLE2", "load_published", "convert_json_dir"]

BUNDLED = Path(__file__).with_name("_data") / "model_zoo_weights_sqnr.csv.gz"

# Paper, App. C, Table 2: average natural sparsity (%) of quantized model-zoo tensors.
PAPER_TABLE2 = {8: 13, 7: 16, 6: 20, 5: 27, 4: 35, 3: 46, 2: 59}

_FIELDS = (
    "sample_kurtosis",
    "quant_sqnr",
    "quant_mse",
    "quant_sparsity",
    "pruning_sqnr",
    "pruning_mse",
    "pruning_sqnr_corrected",
    "pruning_mse_corrected",
)
_NAME = re.compile(r"(?P<model>.+)_(?P<bits>\d+)_bits_mse\.json$")


def convert_json_dir(folder: str | Path) -> str:
    """The published JSON files (one per model and bit-width) as one CSV text (model, bits, name, fields)."""
    folder = Path(folder)
    files = sorted(folder.glob("*_bits_mse.json"))
    if not files:
        raise PvqInputError(f"{folder}: no *_bits_mse.json files")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("model", "bits", "name", *_FIELDS))
    for f in files:
        m = _NAME.match(f.name)
        if m is None:
            continue
        for name, v in json.loads(f.read_text()).items():
            w.writerow((m["model"], int(m["bits"]), name, *(repr(float(v[k])) for k in _FIELDS)))
    return buf.getvalue()


def _row(model: str, bits: int, name: str, v: dict[str, float]) -> dict[str, Any]:
    return {
        "source": "paper",
        "model": model,
        "name": name,
        "bits": bits,
        # excess -> Pearson; values below 1 are impossible (FP16 underflow of x^4 gave excess -3): nan
        "kurtosis": v["sample_kurtosis"] + 3.0 if v["sample_kurtosis"] + 3.0 >= 1.0 else float("nan"),
        "quant_snr_db": v["quant_sqnr"],
        "quant_sparsity": v["quant_sparsity"],
        "prune_snr_db": v["pruning_sqnr"],
        "prune_snr_corrected_db": v["pruning_sqnr_corrected"],
        "quant_mse": v["quant_mse"],
        "prune_mse": v["pruning_mse"],
        "prune_mse_corrected": v["pruning_mse_corrected"],
        "prune_fp16_zero": v["pruning_mse"] == 0.0,
        "kurtosis_fp16_invalid": v["sample_kurtosis"] + 3.0 < 1.0,
    }


def load_published(path: str | Path | None = None, models: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows (one per model, tensor and bit-width) with pvq's keys; ``kurtosis`` is Pearson.

    path: the bundled table (default), another ``.csv.gz``/``.csv`` made by :func:`convert_json_dir`, or a
    folder of the original JSON files. models: keep only these models.
    """
    p = BUNDLED if path is None else Path(path)
    if p.is_dir():
        text = convert_json_dir(p)
    elif p.exists():
        raw = p.read_bytes()
        text = gzip.decompress(raw).decode() if p.suffix == ".gz" else raw.decode()
    else:
        raise PvqInputError(f"{p}: published per-tensor data not found")
    keep = None if models is None else set(models)
    rows = []
    for rec in csv.DictReader(io.StringIO(text)):
        if keep is not None and rec["model"] not in keep:
            continue
        v = {k: float(rec[k]) for k in _FIELDS}
        rows.append(_row(rec["model"], int(rec["bits"]), rec["name"], v))
    if not rows:
        raise PvqInputError(f"{p}: no published rows" + (f" for models {sorted(keep)}" if keep else ""))
    return rows
