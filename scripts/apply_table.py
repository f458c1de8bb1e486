"""The closing table of issue 12: whole-model compression with each recipe, measured on held-out data.

For each model and recipe: ``pvq.apply`` (calibration from the calibration part of the bundled data, never
the held-out part), then
- smollm2: perplexity (``pvq.models.perplexity``) on the first 1,024 tokens of the bundled text (the
  evaluation slice, windows of 256 tokens);
- mobilenet_v2: top-1 agreement with the uncompressed model on held-out photo crops (disjoint pixels) with a
  95 % Wilson interval, and the SNR of the logits' error;
- minilm: SNR of the final hidden states' error (non-padded tokens) and the mean cosine between compressed and
  uncompressed sentence embeddings, on the held-out sentences;
with real bits per weight (weighted over the compressed tensors) and seconds. Rows are cached in
``OUT/rows.jsonl`` (keyed by model, recipe, calibration and the algorithms' source), so a rerun resumes;
``OUT/table.json`` and ``OUT/table.md`` are rewritten after every row.

    PYTHONPATH=src python scripts/apply_table.py [--models smollm2,mobilenet_v2,minilm] [--recipes R1,R2]
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import torch

import pvq.apply
from pvq._io import atomic_write_text, to_jsonable

RECIPES = (
    "none",
    "int8:channel:rtn",
    "int4:channel:rtn",
    "int4:g128:rtn",
    "int4:g128:gptq",
    "int4:g32:gptq",
    "prune50:magnitude",
    "prune50:wanda",
    "prune50:sparsegpt",
    "2:4:sparsegpt",
    "prune75:sparsegpt",
)
# (calibration batches, batch size, tokens per sequence) and held-out sizes
# (SmolLM2: 16 sequences of 128 tokens, because a sequential pass over 135 M parameters costs minutes on the
# shared 2-core CPU this table was run on; GPTQ's paper uses 128 x 2,048)
CALIB = {"smollm2": (4, 4, 128), "mobilenet_v2": (8, 8, 0), "minilm": (16, 8, 0)}
EVAL_CROPS = 128


# the modules whose code decides a row's numbers: algorithms, grids, kernels, sequential capture, the driver,
# the calibration/evaluation data, and this script's own evaluation
_KEYED_MODULES = (
    "pvq.apply._algorithms",
    "pvq.apply._obs",
    "pvq.apply._scales",
    "pvq.apply._masks",
    "pvq.apply._sweep_kernels",
    "pvq.apply._sequential",
    "pvq.apply._apply",
    "pvq.apply._compressed",
    "pvq.recipes",
    "pvq.models._calibration",
    "pvq.models._minilm",
    "pvq.models._mobilenetv2",
    "pvq.models._smollm2",
    "pvq.models._lm",
)


def _algorithms_hash() -> str:
    """First 12 hex digits of the SHA-256 of every keyed module's source and of this script's evaluation, so a
    cached row is reused only when nothing that produced it has changed."""
    import importlib

    h = hashlib.sha256()
    for name in _KEYED_MODULES:
        path = Path(str(importlib.import_module(name).__file__))
        files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]  # a package: all
        for f in files:
            h.update(f"{name}/{f.name}".encode() + b"\0" + f.read_bytes() + b"\0")
    for obj in (_Evaluator, _calibration, CALIB, EVAL_CROPS):
        h.update((inspect.getsource(obj) if callable(obj) else repr(obj)).encode() + b"\0")
    return h.hexdigest()[:12]


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    z, p = 1.959964, k / n
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (c - h, c + h)


def _snr_db(ref: torch.Tensor, err: torch.Tensor) -> float:
    e = float((err.double() ** 2).sum())
    return math.inf if e == 0 else 10 * math.log10(float((ref.double() ** 2).sum()) / e)


class _Evaluator:
    """The held-out data of one model and its uncompressed reference outputs."""

    def __init__(self, name: str) -> None:
        from pvq.models import evaluation_batches, evaluation_text, get_tokenizer

        self.name = name
        if name == "smollm2":
            self.tok = get_tokenizer(name)
            self.text = evaluation_text(name)
        elif name == "mobilenet_v2":
            self.batches = evaluation_batches(name, EVAL_CROPS // 16, seed=1, batch_size=16)
        else:
            from pvq.models import split_sentences
            from pvq.models._minilm import encode_batch

            sents = split_sentences(evaluation_text(name))
            tok = get_tokenizer(name)
            self.batches = [encode_batch(tok, sents[i : i + 16]) for i in range(0, len(sents), 16)]
            self.n_sentences = len(sents)
        self.ref: Any = None

    @torch.no_grad()
    def _outputs(self, model: torch.nn.Module) -> Any:
        if self.name == "mobilenet_v2":
            return torch.cat([model(x) for x in self.batches])
        # minilm: final hidden states of the last encoder layer (hooked) and the sentence embeddings
        layers = [m for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList)][0]
        hidden: list[torch.Tensor] = []
        h = layers[-1].register_forward_hook(
            lambda _m, _a, out: hidden.append(out[0] if isinstance(out, tuple) else out)
        )
        try:
            emb = [model(**b) for b in self.batches]
        finally:
            h.remove()
        hs = torch.cat([x[b["attention_mask"].bool()] for x, b in zip(hidden, self.batches, strict=True)])
        return torch.cat(emb), hs

    def measure(self, model: torch.nn.Module) -> dict[str, Any]:
        from pvq.models import perplexity

        if self.name == "smollm2":
            return {"perplexity": perplexity(model, self.tok, self.text, max_tokens=1024, window=256)}
        out = self._outputs(model)
        if self.ref is None:
            self.ref = out
        if self.name == "mobilenet_v2":
            agree = int((out.argmax(1) == self.ref.argmax(1)).sum())
            n = len(out)
            lo, hi = _wilson(agree, n)
            return {
                "top1_agreement": agree / n,
                "top1_agreement_ci95": [lo, hi],
                "n_crops": n,
                "logits_snr_db": _snr_db(self.ref, out - self.ref),
            }
        emb, hs = out
        cos = torch.nn.functional.cosine_similarity(emb, self.ref[0], dim=1)
        return {
            "hidden_snr_db": _snr_db(self.ref[1], hs - self.ref[1]),
            "mean_embedding_cosine": float(cos.mean()),
            "n_sentences": self.n_sentences,
        }


def _calibration(name: str) -> list[Any]:
    from pvq.models import calibration_batches

    nb, bs, seq = CALIB[name]
    return calibration_batches(name, nb, seed=0, batch_size=bs, seq_len=seq or 128, disjoint=True)


def _calibration_note(name: str) -> str:
    nb, bs, seq = CALIB[name]
    if name == "smollm2":
        what = f"{nb * bs} windows of {seq} tokens"
    elif name == "minilm":
        what = f"{nb * bs} sentences"
    else:
        what = f"{nb * bs} photo crops"
    return what + " from the calibration part of the bundled data"


def _num(metrics: dict[str, Any], key: str, fmt: str) -> str:
    """A metric formatted, or its note (JSON has no inf: ``to_jsonable`` writes None and ``KEY_note``)."""
    v = metrics.get(key)
    return format(v, fmt) if isinstance(v, (int, float)) else str(metrics.get(f"{key}_note", "n/a"))


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = ["# pvq apply: whole-model compression on held-out data", ""]
    out.append(f"Command: `{meta['command']}`; machine: {meta['machine']}; torch {meta['torch']}.")
    out.append("")
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        out.append(f"## {model}")
        out.append("")
        out.append(f"Calibration: {mine[0]['calibration']}. Evaluation: {mine[0]['evaluation']}.")
        out.append("")
        if model == "smollm2":
            head = ["recipe", "perplexity", "bits/weight", "paper bits", "seconds"]
            cells = [[f"{r['metrics']['perplexity']:.2f}"] for r in mine]
        elif model == "mobilenet_v2":
            head = [
                "recipe",
                "top-1 agreement (95% CI)",
                "logits SNR dB",
                "bits/weight",
                "paper bits",
                "seconds",
            ]
            cells = [
                [
                    f"{r['metrics']['top1_agreement']:.3f} ({r['metrics']['top1_agreement_ci95'][0]:.3f}"
                    f"-{r['metrics']['top1_agreement_ci95'][1]:.3f})",
                    _num(r["metrics"], "logits_snr_db", ".1f"),
                ]
                for r in mine
            ]
        else:
            head = ["recipe", "hidden SNR dB", "mean emb. cosine", "bits/weight", "paper bits", "seconds"]
            cells = [
                [
                    _num(r["metrics"], "hidden_snr_db", ".1f"),
                    _num(r["metrics"], "mean_embedding_cosine", ".4f"),
                ]
                for r in mine
            ]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for r, c in zip(mine, cells, strict=True):
            bits = f"{r['bits_per_weight']:.3f}" if r["recipe"] != "none" else "16"
            paper = f"{r['paper_bits_per_weight']:.2f}" if r["recipe"] != "none" else "16"
            out.append(
                f"| `{r['recipe']}` | " + " | ".join(c) + f" | {bits} | {paper} | {r['seconds']:.0f} |"
            )
        out.append("")
    out.append(
        "bits/weight: real storage cost (codes, FP16 scales, zero points, bitmask or N:M index) averaged over "
        "the compressed tensors (every conv/linear weight; embeddings and lm_head left in FP16). paper bits: the "
        "paper's mask-free accounting. seconds: pvq.apply wall time (calibration capture + compression), one "
        "torch thread, on a 2-core CPU shared with other jobs (load average ~17 during the 2026-11-30 run, so "
        "about 10x the CPU time: pvq.apply int4:g128:gptq on SmolLM2 is 44 CPU-seconds, "
        "results/cpu/bench_apply.md); only indicative."
    )
    return "\n".join(out) + "\n"


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    cache: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                cache[r["key"]] = r
    return cache


def _current(cache: dict[str, dict[str, Any]], algo: str) -> list[dict[str, Any]]:
    """Every cached row measured with these algorithms, in model and recipe order (latest per pair)."""
    models = ("smollm2", "mobilenet_v2", "minilm")
    latest = {(r["model"], r["recipe"]): r for r in cache.values() if r["algorithms_sha256_12"] == algo}
    order = {r: i for i, r in enumerate(RECIPES)}
    return sorted(
        latest.values(),
        key=lambda r: (models.index(r["model"]) if r["model"] in models else 9, order.get(r["recipe"], 99)),
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="smollm2,mobilenet_v2,minilm")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--out", default="results/cpu/apply")
    ap.add_argument(
        "--table-only", action="store_true", help="only rewrite table.json/.md from the cached rows"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a shared machine more threads than free cores make every small op wait)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_path = out / "rows.jsonl"
    cache = _read_cache(cache_path)
    algo = _algorithms_hash()
    meta = {
        "command": "PYTHONPATH=src python scripts/apply_table.py (rows cached in rows.jsonl; see its --help)",
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "algorithms_sha256_12": algo,
    }
    from pvq.models import create_model

    for name in [] if args.table_only else args.models.split(","):
        calib_note = _calibration_note(name)
        recipes = args.recipes.split(",")
        if all(f"{name}|{r}|{calib_note}|{algo}" in cache for r in recipes):
            continue  # everything measured: only the table is rewritten below
        model = create_model(name)
        ev = _Evaluator(name)
        batches = _calibration(name)
        eval_note = {
            "smollm2": "perplexity on the first 1,024 tokens of the bundled text (windows of 256)",
            "mobilenet_v2": f"{EVAL_CROPS} photo crops from the held-out 40 % of each photo's width",
            "minilm": "the held-out sentences (the bundled text's evaluation slice)",
        }[name]
        baseline = ev.measure(model)  # reference outputs and the uncompressed model's metrics
        for recipe in recipes:
            key = f"{name}|{recipe}|{calib_note}|{algo}"
            if key not in cache:
                t0 = time.perf_counter()
                if recipe == "none":
                    compressed, res = model, None
                else:
                    res = pvq.apply(model, recipe, batches)
                    compressed = res.module
                secs = time.perf_counter() - t0
                metrics = baseline if res is None else ev.measure(compressed)
                row = {
                    "key": key,
                    "model": name,
                    "recipe": recipe,
                    "metrics": metrics,
                    "bits_per_weight": res.bits_per_weight if res else 16.0,
                    "paper_bits_per_weight": res.paper_bits_per_weight if res else 16.0,
                    "tensors_compressed": len(res.weights) if res else 0,
                    "skipped": res.summary()["skipped"] if res else [],
                    "notes": sorted({r.note for r in res.rows if r.note}) if res else [],
                    "seconds": secs if res else 0.0,
                    "calibration": calib_note,
                    "evaluation": eval_note,
                    "algorithms_sha256_12": algo,
                }
                with cache_path.open("a") as f:
                    f.write(json.dumps(to_jsonable(row)) + "\n")
                cache[key] = row
                del compressed, res
            row = cache[key]
            print(
                f"{name:13s} {recipe:22s} {json.dumps(to_jsonable(row['metrics']))} "
                f"bits {row['bits_per_weight']:.3f} {row['seconds']:.0f} s",
                flush=True,
            )
            _write_table(out, meta, algo)  # other runs may have added rows
    _write_table(out, meta, algo)


def _write_table(out: Path, meta: dict[str, Any], algo: str) -> None:
    rows = _current(_read_cache(out / "rows.jsonl"), algo)
    atomic_write_text(out / "table.json", json.dumps(to_jsonable({"meta": meta, "rows": rows}), indent=1))
    atomic_write_text(out / "table.md", _markdown(rows, meta))


if __name__ == "__main__":
    main()
