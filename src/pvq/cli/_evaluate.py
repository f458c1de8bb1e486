"""`pvq evaluate SOURCE [--recipe R | --plan P | --compressed DIR]`: the model's own quality on held-out data."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import typer

from pvq.cli._common import print_json_rows
from pvq.errors import PvqInputError


def _compressed_model(reference: Any, folder: Path) -> tuple[Any, str, float]:
    """The reference architecture with a saved checkpoint's weights (decompressed by compressed-tensors)."""
    from pvq.apply import load_compressed
    from pvq.models import load_exact

    state, manifest = load_compressed(folder)
    model = copy.deepcopy(reference)
    load_exact(model, state, str(folder))
    recipe = manifest.get("recipe_or_plan")
    text = recipe if isinstance(recipe, str) else f"plan ({folder.name})"
    return model, text, float(manifest.get("totals", {}).get("bits_per_weight", 16.0))


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        source: str = typer.Argument(
            ...,
            help="bundled model name (see `pvq models`), small_resnet (pvq's Fashion-MNIST ResNet), or a "
            "SmallResNet state-dict file (.pt/.pth, e.g. pvq finetune's model_state.pt)",
        ),
        recipe: str | None = typer.Option(None, "--recipe", help="compress with this recipe first, e.g. int4:g128:gptq"),
        plan: Path | None = typer.Option(None, "--plan", help="compress with a per-tensor plan (JSON or allocation.json)"),  # noqa: B008
        compressed: Path | None = typer.Option(  # noqa: B008
            None, "--compressed", help="a folder written by `pvq apply` (read back through compressed-tensors)"
        ),
        data: Path | None = typer.Option(  # noqa: B008
            None, "--data", help="evaluation data: a labelled image folder (image models), a UTF-8 text file (text models) or "
            "the Fashion-MNIST IDX folder (small_resnet)"
        ),
        max_tokens: int = typer.Option(1024, "--max-tokens", help="language models: tokens scored"),
        calib_batches: int | None = typer.Option(None, "--calib-batches", help="calibration batches for --recipe/--plan"),
        seed: int = typer.Option(0, "--seed", help="seed of the paraphrase queries (encoders)"),
        json_out: bool = typer.Option(False, "--json", help="print a JSON array of rows on stdout"),
    ) -> None:
        """Evaluate SOURCE (optionally compressed) against the uncompressed model on held-out real data: perplexity
        and next-token KL (SmolLM2), embedding cosine and paraphrase retrieval (MiniLM), top-1 agreement and KL on
        scikit-image's photos or accuracy on a labelled folder (MobileNetV2, EfficientNet-Lite0), test accuracy on
        Fashion-MNIST's 10,000 test images (small_resnet and its fine-tuned state dicts)."""
        from pvq.cli._common import check_seed
        from pvq.compare._layers_stage import bundled_name_of
        from pvq.data import check_data_modality
        from pvq.evaluate import evaluate, kind_of
        from pvq.evaluate._fashion import SMALL_RESNET
        from pvq.recipes import parse_recipe

        # validate everything before any work
        if sum(x is not None for x in (recipe, plan, compressed)) > 1:
            raise PvqInputError("give at most one of --recipe, --plan and --compressed")
        name = bundled_name_of(source)
        fashion = source == SMALL_RESNET or (name is None and source.endswith((".pt", ".pth")))
        if fashion:
            name = SMALL_RESNET
            if compressed is not None:
                raise PvqInputError("--compressed: not supported for Fashion-MNIST models; give --recipe or --plan")
        elif name is None:
            raise PvqInputError(
                f"{source}: pvq evaluate needs a bundled model (its evaluation task and data are known); for your own "
                "model call pvq.evaluate.evaluate(model, reference, name=..., kind=...) from Python"
            )
        kind_of(name)
        what = parse_recipe(recipe) if recipe is not None else None
        if plan is not None:
            from pvq.apply import read_plan

            what = read_plan(plan)
        if compressed is not None and not compressed.is_dir():
            raise PvqInputError(f"--compressed: {compressed} is not a folder written by pvq apply")
        if data is not None and not fashion:
            from pvq.models import input_spec

            check_data_modality(data, input_spec(name).modality, name)
        if max_tokens < 2:
            raise PvqInputError(f"--max-tokens: must be >= 2, got {max_tokens}")
        if calib_batches is not None and calib_batches < 1:
            raise PvqInputError(f"--calib-batches: must be >= 1, got {calib_batches}")
        check_seed(seed)

        say = lambda msg: print(f"pvq evaluate: {msg}", file=sys.stderr, flush=True)  # noqa: E731
        if fashion:
            from pvq.evaluate._fashion import (
                fashion_calibration,
                pretrained_small_resnet,
                small_resnet_from_file,
            )

            start = small_resnet_from_file(source) if source != SMALL_RESNET else None
            say("loading pvq's Fashion-MNIST SmallResNet (cached; trained now, about 3 epochs, if absent)")
            reference = pretrained_small_resnet(root=data)
            model = start if start is not None else reference
            label = Path(source).name if start is not None else "none"
            bits = 16.0
            if what is not None:
                from pvq.apply import apply

                batches = fashion_calibration(calib_batches or 4, root=data)
                result = apply(model, what, batches, progress=say)
                model, bits = result.module, result.bits_per_weight
                label = (f"{label} + " if start is not None else "") + (str(what) if recipe is not None else f"plan {plan}")
            res = evaluate(model, reference, name=name, kind="fashion", recipe=label, bits_per_weight=bits, data=data)
            _print(res, name, label, bits, json_out)
            return

        from pvq.apply._source import load_model_source

        src = load_model_source(name)
        reference = src.module
        model, label, bits = reference, "none", 16.0
        if compressed is not None:
            model, label, bits = _compressed_model(reference, compressed)
        elif what is not None:
            from pvq.apply import apply
            from pvq.apply._apply import needs_calibration
            from pvq.cli._apply import _calibration

            recipes = [what] if recipe is not None else [*what.recipes.values(), what.default]  # type: ignore[union-attr]
            batches = None
            if any(needs_calibration(r) for r in recipes):
                batches, note = _calibration(src, None, calib_batches)
                say(f"calibration: {note}")
            result = apply(reference, what, batches, progress=say)
            model, bits = result.module, result.bits_per_weight
            label = str(what) if recipe is not None else f"plan {plan}"
        res = evaluate(model, reference, name=name, recipe=label, bits_per_weight=bits, data=data,
                       max_tokens=max_tokens, seed=seed)  # fmt: skip
        _print(res, name, label, bits, json_out)


def _print(res: Any, name: str, label: str, bits: float, json_out: bool) -> None:
    if json_out:
        print_json_rows(res.to_json())
        return
    print(f"{name}, {label}: {bits:.3f} real bits per weight (compressed tensors)")
    for r in res.rows:
        ci = "" if r.interval == "none" else f"  95% [{r.ci_low:.4g}, {r.ci_high:.4g}] ({r.interval})"
        print(f"  {r.metric:<15} {r.value:>10.4g}  ({r.direction} is better; uncompressed {r.baseline:.4g}; "
              f"n={r.n}, {r.split}){ci}")  # fmt: skip
