"""A runnable model for the layer stage of ``pvq compare`` from a Hugging Face folder (``config.json`` + weights).

The architecture comes from ``transformers`` (``AutoModel.from_config``'s registry, via ``from_pretrained``):
pvq does not reimplement every architecture ``config.json`` can name. Calibration: with a ``tokenizer.json`` in
the folder, random windows of the calibration part of the bundled text (never its held-out part); without one,
the model is taken for an image model and gets ``--data`` images or crops of the bundled photos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["hf_runnable"]


def hf_runnable(folder: Path, cfg: Any) -> tuple[Any, list[Any], str] | str:
    """``(model, calibration batches, note)`` for the HF folder ``folder``, or a one-line note saying why not."""
    try:
        from transformers import AutoModel
    except ImportError:
        return (
            f"skipped: {folder.name} is a Hugging Face folder; building its architecture needs transformers "
            "(pip install 'pvq[hf]'), or give --arch package.module:factory."
        )
    try:
        model = AutoModel.from_pretrained(str(folder)).eval()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"skipped: transformers could not build {folder.name} from its config.json ({msg})."
    model.config.use_cache = False  # the layer stage runs plain forward passes
    tok_file = folder / "tokenizer.json"
    if tok_file.is_file():
        if cfg.data is not None:
            return (
                f"skipped: {folder.name} is a text model (it has a tokenizer.json) and --data takes images; "
                f"--data {cfg.data} was ignored."
            )
        from tokenizers import Tokenizer

        from pvq.models._calibration import calibration_text, text_windows

        tok = Tokenizer.from_file(str(tok_file))
        batches = text_windows(tok, calibration_text("smollm2"), n=max(1, cfg.calib_samples // 4), seed=cfg.seed, batch_size=4, seq_len=64)
        note = (
            f"calibration: {len(batches) * 4} windows of 64 tokens of the calibration part of Python's pydoc topics "
            f"text, tokenized with {folder.name}/tokenizer.json"
        )
        return model, batches, note
    from pvq.compare._layers_stage import _data_batches, _photo_batches

    return (model, *(_data_batches(cfg) if cfg.data is not None else _photo_batches(cfg)))
