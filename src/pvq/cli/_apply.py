"""`pvq apply SOURCE (--recipe R | --plan FILE) --out DIR`: turn a recipe or plan into a real compressed model."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from pvq.errors import PvqInputError

# calibration batches by default: (batches, batch size, tokens per sequence)
_DEFAULT_CALIB = {"image": (8, 8, 0), "minilm": (16, 8, 0), "text": (8, 4, 512)}


def _calibration(src: Any, data: Path | None, n: int | None) -> tuple[list[Any], str]:
    """Calibration batches for ``src`` (its bundled data, or ``--data``) and a one-line note."""
    from pvq.models import calibration_batches

    key = "image" if src.modality == "image" else ("minilm" if src.bundled == "minilm" else "text")
    nb, bs, seq = _DEFAULT_CALIB[key]
    nb = n or nb
    if data is None:
        if src.bundled is None:
            raise PvqInputError(
                f"--data: {src.label} is your own module; give calibration images with --data"
            )
        b = calibration_batches(src.bundled, nb, seed=0, batch_size=bs, seq_len=seq or 128, disjoint=True)
        what = (
            "photo crops"
            if key == "image"
            else ("sentences" if key == "minilm" else f"windows of {seq} tokens")
        )
        return b, f"{nb * bs} {what} of the bundled calibration data (held-out part excluded)"
    if src.modality in (None, "image"):
        from pvq.data import image_folder

        x = image_folder(data, size=224).tensors[0]
        return list(x[: nb * bs].split(bs)), f"{min(len(x), nb * bs)} images from {data} (224x224)"
    from pvq.data import text_file

    assert src.bundled is not None
    b = calibration_batches(src.bundled, nb, seed=0, batch_size=bs, seq_len=seq or 128, text=text_file(data))
    return b, f"{nb * bs} {'sentences' if key == 'minilm' else f'windows of {seq} tokens'} of {data}"


def register(app: typer.Typer) -> None:
    @app.command("apply")
    def apply_cmd(
        source: str = typer.Argument(
            ..., help="bundled model name (see `pvq models`) or a .pt file holding a whole nn.Module"
        ),
        recipe: str | None = typer.Option(
            None,
            "--recipe",
            help="one recipe for every conv/linear weight, e.g. int4:g128:gptq, prune50:wanda",
        ),
        plan: Path | None = typer.Option(  # noqa: B008
            None, "--plan", help="per-tensor plan: a plan JSON or pvq compare's allocation.json"
        ),
        out: Path = typer.Option(..., "--out", help="output folder (refused if it exists, unless --force)"),  # noqa: B008
        data: Path | None = typer.Option(  # noqa: B008
            None,
            "--data",
            help="calibration data: a folder of images (image models) or a text file (text models)",
        ),
        force: bool = typer.Option(False, "--force", help="replace --out if it exists"),
        calib_batches: int | None = typer.Option(
            None, "--calib-batches", help="calibration batches (default: 8 image/text batches, 16 for minilm)"
        ),
        include_embeddings: bool = typer.Option(
            False, "--include-embeddings", help="also compress embeddings (and lm_head)"
        ),
        json_out: bool = typer.Option(
            False, "--json", help="print a JSON array of rows (one per weight tensor) on stdout"
        ),
    ) -> None:
        """Compress SOURCE with a recipe or a per-tensor plan (layer by layer, calibration from already
        compressed earlier layers) and write the checkpoint, the dequantized state dict and a manifest to OUT."""
        from pvq.apply import apply, read_plan
        from pvq.apply._apply import check_plan, needs_calibration
        from pvq.apply._source import load_model_source
        from pvq.recipes import parse_recipe

        t0 = time.perf_counter()
        # validate everything before any work
        if (recipe is None) == (plan is None):
            raise PvqInputError("give exactly one of --recipe R or --plan FILE")
        what = parse_recipe(recipe) if recipe is not None else read_plan(plan)  # type: ignore[arg-type]
        if out.exists() and not force:
            raise PvqInputError(f"--out: {out} exists (use --force to replace it)")
        if calib_batches is not None and calib_batches < 1:
            raise PvqInputError(f"--calib-batches: must be >= 1, got {calib_batches}")
        from pvq.compare._layers_stage import bundled_name_of
        from pvq.data import check_data_modality

        bundled = bundled_name_of(source)
        if data is not None and bundled is not None:  # before loading the model: a bad --data fails fast
            from pvq.models import input_spec

            check_data_modality(data, input_spec(bundled).modality, bundled)
        src = load_model_source(source)
        if plan is not None:
            check_plan(src.module, what)  # type: ignore[arg-type]
        if data is not None:
            check_data_modality(data, src.modality or "image", src.label)
        recipes = [what] if recipe is not None else [*what.recipes.values(), what.default]  # type: ignore[union-attr]
        batches: list[Any] | None = None
        note = "none (no recipe needs calibration)"
        if any(needs_calibration(r) for r in recipes):
            batches, note = _calibration(src, data, calib_batches)

        def say(msg: str) -> None:
            print(f"pvq apply: {msg}", file=sys.stderr, flush=True)

        say(f"{src.label}: {what if recipe is not None else f'plan {plan}'}; calibration: {note}")
        result = apply(
            src.module,
            what,
            batches,
            include_embeddings=include_embeddings,
            include_lm_head=include_embeddings,
            progress=say,
        )
        from pvq.apply._save import save_compressed

        cfg = getattr(src.module, "config", None)
        save_compressed(
            result,
            out,
            force=force,
            model_config=cfg.to_dict() if hasattr(cfg, "to_dict") else None,
            source_path=src.path,
        )
        files = sorted(p for p in out.iterdir() if p.is_file())
        summary = {**result.summary(), "source": src.label, "calibration": note, "out": str(out)}
        summary["files"] = [str(f) for f in files]
        summary["total_seconds"] = time.perf_counter() - t0
        if json_out:  # the CLI contract: a JSON array of row objects (one per weight tensor), nothing else
            from pvq.cli._common import print_json_rows

            print_json_rows([r.to_json() for r in result.rows])
            return
        comp = [r for r in result.rows if r.status == "compressed"]
        print(
            f"{src.label}: {len(comp)} tensors compressed, {result.bits_per_weight:.3f} real bits/weight "
            f"(paper accounting {result.paper_bits_per_weight:.3f}); skipped: "
            f"{', '.join(summary['skipped']) or 'none'}; {summary['total_seconds']:.0f} s"
        )
        print(f"written: {out}")
