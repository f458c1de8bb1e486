"""The layer-wise (output error) sample of a compare run: a few layers, a few chunks, every bit-width,
heuristics and exact solvers of :mod:`pvq.layerwise` on the layer's real inputs.

Each (layer, chunk, bits, method, solver) becomes one row with the DESIGN.md layer keys; the chunk's
SNR pools its sampled output rows: ``10 log10(sum ||X w0||² / sum ||X(w - w0)||²)``. Rows are appended
to ``partial/layers.jsonl`` per (layer, chunk, bits), so an interrupted run resumes there; a chunk is
identified by its content (``chunk_id``: the output rows and input columns it covers), not by its
position in the sampled list.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from pvq._io import append_jsonl, read_jsonl
from pvq._progress import progress
from pvq.metrics import snr_db

__all__ = ["run_layer_sample", "pick_layers", "pool_rows", "bundled_name_of", "chunk_id", "PAPER_LAYERS"]

# the layers of the paper's Fig. 4 that pvq has weights for (paper Table 3)
PAPER_LAYERS = (
    "features.8.conv.0.0",
    "features.11.conv.1.0",
    "features.8.conv.1.0",
    "features.11.conv.0.0",
    "blocks.1.1.conv_pw",
    "_blocks.2._expand_conv",  # the same EfficientNet-Lite0 layer in efficientnet_pytorch naming
)
ROWS_PER_CHUNK = 4
SOLVERS = {"prune": ("magnitude", "obs", "exact"), "quant": ("rtn", "gptq", "exact")}


def pick_layers(names_inputs: list[tuple[str, int]], k: int) -> list[str]:
    """``k`` layers: the paper's Fig. 4 layers when the model has them, else evenly spread over depth
    among layers with at least 16 inputs per output (first and last layer excluded)."""
    names = [n for n, _ in names_inputs]
    chosen = [n for n in PAPER_LAYERS if n in names][:k]
    pool = [n for n, d in names_inputs[1:-1] if d >= 16 and n not in chosen] or [
        n for n in names if n not in chosen
    ]
    if len(chosen) < k and pool:
        idx = np.unique(np.linspace(0, len(pool) - 1, k - len(chosen) + 2)[1:-1].round().astype(int))
        chosen += [pool[i] for i in idx]
    return chosen[:k]


def chunk_id(p: Any) -> str:
    """What a chunk problem covers, as text: ``r<first>-<last>:c<a>-<b>`` (output rows, input columns
    ``[a, b)`` of the unfolded weight), plus a hash of the row list when the rows are a sampled subset."""
    rows = np.asarray(p.row_ids if p.row_ids is not None else np.arange(p.W.shape[0]), dtype=np.int64)
    cols = np.asarray(p.inputs if p.inputs is not None else np.arange(p.n), dtype=np.int64)
    text = f"r{rows[0]}-{rows[-1]}:c{cols[0]}-{cols[-1] + 1}"
    if rows.size != rows[-1] - rows[0] + 1 or cols.size != cols[-1] - cols[0] + 1:
        text += "#" + hashlib.blake2b(rows.tobytes() + b"|" + cols.tobytes(), digest_size=4).hexdigest()
    return text


def pool_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pool per-output-row results (D's ``result_rows``) into one row per (layer, chunk, bits, method, solver)."""
    acc: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = (r["layer"], r["chunk"], r["bits"], r["method"], r["solver"])
        d = acc.setdefault(
            key,
            {"signal": 0.0, "error": 0.0, "seconds": 0.0, "kind": r["kind"], "statuses": set(), "rows": 0},
        )
        d["signal"] += float(r["signal"])
        d["error"] += float(r["error"])
        d["seconds"] += float(r["seconds"])
        d["statuses"].add(r["status"])
        d["rows"] += 1
    out = []
    for (layer, chunk, b, method, solver), d in acc.items():
        st = d["statuses"]
        status = "optimal" if st == {"optimal"} else ("time_limit" if "time_limit" in st else "heuristic")
        out.append(
            {
                "layer": layer,
                "chunk": chunk,
                "bits": b,
                "method": method,
                "solver": solver,
                "snr_db": snr_db(d["signal"], d["error"]),
                "kind": d["kind"],
                "seconds": d["seconds"],
                "status": status,
                "rows": d["rows"],
            }
        )
    return out


def bundled_name_of(source: str) -> str | None:
    """The bundled model a source names or points at (its installed file or folder), else ``None``."""
    from pvq.models import bundled_names, bundled_path

    if source in bundled_names():
        return source
    try:
        p = Path(source).expanduser().resolve()
    except OSError:
        return None
    for n in bundled_names():
        bp = bundled_path(n, required=False)
        if bp is not None and Path(bp).resolve() == p:
            return n
    return None


def _linear_like(model: Any) -> list[tuple[str, int]]:
    from torch import nn

    out = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and getattr(m, "weight", None) is not None:
            w = m.weight
            out.append((name, int(np.prod(w.shape[1:]))))
    return out


def _data_batches(cfg: Any) -> tuple[list[Any], str]:
    """``--data``: the user's images, 224x224, in batches of 8."""
    from pvq.data import image_folder

    x = image_folder(cfg.data, size=224).tensors[0]
    return list(x[: cfg.calib_samples * 8].split(8)), f"calibration: {len(x)} images from {cfg.data}"


def _photo_batches(cfg: Any) -> tuple[list[Any], str]:
    """Random crops of the bundled photos (ImageNet normalisation), for a user's image model without --data."""
    from pvq.data import imagenet_normalize, sample_photo_crops

    x = imagenet_normalize(sample_photo_crops(max(4, cfg.calib_samples), 224, cfg.seed))
    return list(x.split(4)), f"calibration: {len(x)} random 224x224 crops of scikit-learn's sample photos"


def runnable_model(cfg: Any, model: Any = None, calibration: Any = None) -> tuple[Any, list[Any], str] | str:
    """The model the layer stage runs and its calibration batches: ``(model, batches, note)``, or a one-line
    note saying why the stage cannot run. In order: ``model`` (an ``nn.Module`` given from Python, with
    ``calibration`` batches or ``--data``), a bundled model, ``cfg.arch`` (``package.module:factory`` building
    the architecture the weights file ``cfg.source`` fills), a Hugging Face folder with ``config.json``."""
    from pvq.models import calibration_batches, create_model

    if model is not None:
        if calibration is not None:
            batches = list(calibration)
            return model, batches, f"calibration: {len(batches)} batches given by the caller"
        if cfg.data is not None:
            return (model, *_data_batches(cfg))
        return "skipped: an nn.Module needs calibration inputs (calibration=[batch, ...] or a folder of images)."
    name = bundled_name_of(cfg.source)
    if name is not None:
        if cfg.data is not None:
            return (create_model(name), *_data_batches(cfg))
        batches = calibration_batches(name, n=max(1, cfg.calib_samples // 4), seed=cfg.seed, batch_size=4, seq_len=64)
        what = "text from Python's pydoc topics" if isinstance(batches[0], dict) else "random crops of scikit-learn's sample photos"
        return create_model(name), batches, f"calibration: {len(batches) * 4} inputs of the bundled {name}'s own kind ({what})"
    arch = getattr(cfg, "arch", None)
    if arch is not None:
        from pvq.apply._source import load_model_source

        built = load_model_source(cfg.source, arch).module
        return (built, *(_data_batches(cfg) if cfg.data is not None else _photo_batches(cfg)))
    folder = Path(cfg.source).expanduser()
    if folder.is_dir() and (folder / "config.json").is_file():
        from pvq.compare._hf_folder import hf_runnable

        return hf_runnable(folder, cfg)
    return (
        f"skipped: {Path(cfg.source).name} is a weights file, and pvq has no architecture to run it with, so no layer "
        "inputs can be captured (calibration skipped); the per-tensor comparison does not need them. Give --arch "
        "package.module:factory (a function returning your nn.Module) to run it."
    )


def run_layer_sample(
    cfg: Any, ws: Any, part: Path, log: Any, model: Any = None, calibration: Any = None
) -> tuple[list[dict[str, Any]], str]:
    """Rows (DESIGN.md layer keys, one per chunk and solver) and a one-line note on what was done or skipped.
    ``model``/``calibration``: an ``nn.Module`` and its calibration batches given from Python (:func:`pvq.compare`)."""
    try:
        from pvq.layerwise import capture_layer_problems, result_rows, solve_row
    except ImportError:
        return [], "skipped: the layer-wise solvers (pvq.layerwise) are not available in this installation."

    t0 = time.perf_counter()
    got = runnable_model(cfg, model, calibration)
    if isinstance(got, str):
        return [], got
    model, batches, data_note = got
    layers = pick_layers(_linear_like(model), cfg.layers)
    path = part / "layers.jsonl"
    rows = list(read_jsonl(path))
    done = {(r["layer"], r.get("chunk_id"), r["bits"]) for r in rows}
    if done:
        log(f"resuming: {len(done)} layer chunks already solved")
    stopped = False
    n_chunks = 0
    for layer in layers:
        if time.perf_counter() - t0 > cfg.layer_time_s:
            stopped = True
            break
        try:
            problems = capture_layer_problems(
                model,
                layer,
                batches,
                opt_dim=cfg.opt_dim,
                bits=cfg.bits,
                max_chunks=cfg.chunks,
                max_rows=ROWS_PER_CHUNK,
                seed=cfg.seed,
            )
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:  # a user's model and these inputs disagree
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return rows, f"skipped: the model could not be run on its calibration inputs ({msg}); {data_note}."
        for p in progress(problems, total=len(problems), desc=f"layer {layer}"):
            n_chunks += 1
            cid = chunk_id(p)
            for b in cfg.bits:
                if (p.layer, cid, b) in done:
                    continue
                if time.perf_counter() - t0 > cfg.layer_time_s:
                    stopped = True
                    break
                raw: list[dict[str, Any]] = []
                for i, w0 in enumerate(p.W):
                    if not np.any(w0):
                        continue
                    for method in ("prune", "quant"):
                        scale = p.scales.get(b) if method == "quant" else None
                        if method == "quant" and not (scale and math.isfinite(scale) and scale > 0):
                            continue
                        res = solve_row(
                            p.G,
                            w0,
                            method,
                            b,
                            scale=scale,
                            solvers=SOLVERS[method],
                            time_limit=cfg.solve_time_s,
                            seed=cfg.seed,
                        )
                        raw += result_rows(
                            res, p.G, w0, method, b, layer=p.layer, chunk=p.chunk, row=int(p.row_ids[i])
                        )
                pooled = [{**r, "chunk_id": cid} for r in pool_rows(raw)]
                append_jsonl(path, pooled)
                rows += pooled
                done.add((p.layer, cid, b))
            if stopped:
                break
        if stopped:
            break
    per_layer: dict[str, set[Any]] = defaultdict(set)
    for r in rows:
        per_layer[r["layer"]].add(r["chunk"])
    what = ", ".join(f"{k} ({len(v)} chunks)" for k, v in per_layer.items())
    note = (
        f"{len(per_layer)} layers sampled: {what}; {ROWS_PER_CHUNK} output rows per chunk of {cfg.opt_dim} inputs, "
        f"solvers {', '.join(f'{m}: ' + '/'.join(s) for m, s in SOLVERS.items())}, {cfg.solve_time_s:g} s limit per exact solve; {data_note}."
    )
    if stopped:
        note += f" Stopped at the {cfg.layer_time_s:g} s time budget of this stage (--layer-time); rerun to continue."
    return rows, note
