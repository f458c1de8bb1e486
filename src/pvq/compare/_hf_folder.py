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
    import transformers
    from transformers.utils import logging as hf_logging

    # the class config.json names (e.g. LlamaForCausalLM: no "unexpected lm_head" report), else the bare AutoModel
    archs = _read_archs(folder / "config.json")
    cls = next((getattr(transformers, a) for a in archs if hasattr(transformers, a)), AutoModel)
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()  # pvq reports its own progress; transformers' bars and load reports
    hf_logging.set_verbosity_error()  # would interleave with it on stderr
    try:
        model = cls.from_pretrained(str(folder)).eval()
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"skipped: transformers could not build {folder.name} from its config.json ({msg})."
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    model.config.use_cache = False  # the layer stage runs plain forward passes
    tok_file = folder / "tokenizer.json"
    if tok_file.is_file():
        if cfg.data is not None:
            return (
                f"skipped: {folder.name} is a text model (it has a tokenizer.json) and --data takes images; "
                f"--data {cfg.data} was ignored."
            )
        from tokenizers import Tokenizer

        from pvq.models._calibration import text_windows

        tok = Tokenizer.from_file(str(tok_file))
        tok.no_truncation()
        batches = text_windows(tok, _calibration_part(tok), n=max(1, cfg.calib_samples // 4), seed=cfg.seed, batch_size=4, seq_len=64)
        note = (
            f"calibration: {len(batches) * 4} windows of 64 tokens of the calibration part of Python's pydoc topics "
            f"text, tokenized with {folder.name}/tokenizer.json"
        )
        return model, batches, note
    from pvq.compare._layers_stage import _data_batches, _photo_batches

    return (model, *(_data_batches(cfg) if cfg.data is not None else _photo_batches(cfg)))


def _calibration_part(tok: Any) -> str:
    """The bundled text after its held-out part, measured with this tokenizer as
    :func:`pvq.models.held_out_chars` does for a bundled model (its first 4,096 + 64 tokens, and at least
    :data:`~pvq.models._calibration.MIN_HELD_OUT_CHARS` characters)."""
    from pvq.data import perplexity_text, split_text
    from pvq.models._calibration import HELD_OUT_TOKENS, MIN_HELD_OUT_CHARS
    from pvq.models._lm import encode_ids

    text = perplexity_text()
    chars = HELD_OUT_TOKENS * 4
    while chars < len(text) and len(encode_ids(tok, text[:chars])) < HELD_OUT_TOKENS + 64:
        chars = int(chars * 1.25)
    return split_text(text, max(chars, min(MIN_HELD_OUT_CHARS, len(text) // 4)))[1]


def _read_archs(path: Path) -> list[str]:
    import json

    try:
        archs = json.loads(path.read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return []
    return [a for a in archs if isinstance(a, str) and a.isidentifier()]
