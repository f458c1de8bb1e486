"""Held-out sanity of pvq's evaluation on SmolLM2 (issue 13): the uncompressed perplexity on the first 1,024 held-out
tokens, INT8 per channel next to it, and magnitude pruning at 75 % against every 4-bit quantization option.

Each recipe is applied to the whole model with ``pvq.apply`` (GPTQ calibrates on the bundled calibration windows,
disjoint from the evaluated slice) and scored with ``pvq.evaluate`` (perplexity and next-token KL to the
uncompressed model, 1,020 predicted tokens in windows of 256).

    PYTHONPATH=src .venv/bin/python scripts/smollm2_sanity.py [--out results/cpu/smollm2_sanity]

``tests/test_evaluate_smollm2.py`` (slow) runs :func:`measure` and checks the expectations below.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

RECIPES = (
    "none",
    "int8:channel:rtn",
    "int4:tensor:rtn",
    "int4:channel:rtn",
    "int4:g128:rtn",
    "int4:g128:gptq",
    "prune75:magnitude",
)


def measure(recipes: tuple[str, ...] = RECIPES, log: Any = print) -> list[dict[str, Any]]:
    """One row per recipe: ``recipe, bits, perplexity, kl, kl_low, kl_high, n, seconds``."""
    import torch

    from pvq.apply import apply
    from pvq.apply._apply import needs_calibration
    from pvq.apply._source import load_model_source
    from pvq.cli._apply import _calibration
    from pvq.evaluate import evaluate
    from pvq.recipes import parse_recipe

    torch.manual_seed(0)
    src = load_model_source("smollm2")
    ref = src.module
    batches = None
    rows: list[dict[str, Any]] = []
    for text in recipes:
        t = time.perf_counter()
        recipe = parse_recipe(text)
        if needs_calibration(recipe) and batches is None:
            batches, _ = _calibration(src, None, None)
        model, bits = ref, 16.0
        if text != "none":
            res = apply(ref, recipe, batches if needs_calibration(recipe) else None)
            model, bits = res.module, res.bits_per_weight
        by = {r.metric: r for r in evaluate(model, ref, name="smollm2", recipe=text, bits_per_weight=bits).rows}
        kl = by["kl"]
        row = {
            "recipe": text,
            "bits": bits,
            "perplexity": by["perplexity"].value,
            "kl": kl.value,
            "kl_low": kl.ci_low,
            "kl_high": kl.ci_high,
            "n": by["perplexity"].n,
            "seconds": time.perf_counter() - t,
        }
        log(f"{text}: {bits:.3f} bits/weight, perplexity {row['perplexity']:.4g}, KL {kl.value:.4g} [{row['seconds']:.0f} s]")
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    base = next(r["perplexity"] for r in rows if r["recipe"] == "none")
    out = [
        "| recipe | real bits/weight | perplexity | vs uncompressed | KL to uncompressed (95 % CI) | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| `{r['recipe']}` | {r['bits']:.3f} | {r['perplexity']:.4g} | {100 * (r['perplexity'] / base - 1):+.1f} % | "
            f"{r['kl']:.4g} ({r['kl_low']:.3g}-{r['kl_high']:.3g}) | {r['seconds']:.0f} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("results/cpu/smollm2_sanity"))
    args = ap.parse_args()
    rows = measure()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "table.md").write_text(table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
