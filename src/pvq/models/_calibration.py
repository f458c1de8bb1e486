"""Calibration inputs for the bundled models: real photos for the CNNs, real text for the transformers.

Held-out split: the bundled text (Python's pydoc topics) is cut into an *evaluation* slice, the first
:data:`HELD_OUT_TOKENS` tokens of the model's tokenizer (``pvq.models.perplexity`` scores the first 1,024), and
a *calibration* part, everything after it. Text calibration always draws from the calibration part, so a
perplexity measured on the evaluation slice is never measured on calibration text. Photos: with
``disjoint=True`` calibration crops come from the left 60 % of each photo's width and
:func:`evaluation_batches` from the right 40 %, so the two share no pixel.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from pvq.errors import PvqInputError
from pvq.models._create import get_tokenizer, input_spec

__all__ = [
    "CALIBRATION_REGION",
    "EVALUATION_REGION",
    "HELD_OUT_TOKENS",
    "calibration_batches",
    "calibration_text",
    "evaluation_batches",
    "evaluation_text",
    "held_out_chars",
    "text_windows",
]

HELD_OUT_TOKENS = 4096  # the evaluation slice: at least this many tokens (perplexity uses the first 1,024)
CALIBRATION_REGION = (0.0, 0.6)  # fractions of each photo's width
EVALUATION_REGION = (0.6, 1.0)


@lru_cache(maxsize=8)
def held_out_chars(name: str, tokens: int = HELD_OUT_TOKENS) -> int:
    """Characters of the bundled text that hold its first ``tokens`` tokens (the model's tokenizer), plus a
    margin of 64 tokens' worth; calibration text starts after them."""
    from pvq.data import perplexity_text
    from pvq.models._lm import encode_ids

    text = perplexity_text()
    tok = get_tokenizer(name)  # a fresh instance: switching its truncation off changes no one else's
    if hasattr(tok, "no_truncation"):
        tok.no_truncation()
    chars = tokens * 4
    while chars < len(text) and len(encode_ids(tok, text[:chars])) < tokens + 64:
        chars = int(chars * 1.25)
    if chars >= len(text):
        raise PvqInputError(f"{name}: the bundled text has fewer than {tokens} tokens")
    return chars


def evaluation_text(name: str) -> str:
    """The held-out slice of the bundled text for ``name`` (never used for calibration)."""
    from pvq.data import perplexity_text, split_text

    return split_text(perplexity_text(), held_out_chars(name))[0]


def calibration_text(name: str) -> str:
    """The bundled text after the held-out slice: where text calibration windows and sentences come from."""
    from pvq.data import perplexity_text, split_text

    return split_text(perplexity_text(), held_out_chars(name))[1]


def text_windows(
    tokenizer: object, text: str, n: int, seed: int = 0, batch_size: int = 8, seq_len: int = 128
) -> list[torch.Tensor | dict[str, torch.Tensor]]:
    """``n`` batches ``{"input_ids": (batch_size, seq_len)}`` of random token windows of ``text`` (seeded)."""
    from pvq.models._lm import encode_ids

    if seq_len < 2:
        raise PvqInputError(f"seq_len: must be >= 2, got {seq_len}")
    rng = np.random.default_rng(seed)
    # tokenise a random stretch of the text long enough for this batch's windows
    need = seq_len * batch_size * 6  # characters (about 4 per token, with margin)
    out: list[torch.Tensor | dict[str, torch.Tensor]] = []
    for _ in range(n):
        start = int(rng.integers(0, max(1, len(text) - need)))
        ids = encode_ids(tokenizer, text[start : start + need])
        if len(ids) < seq_len * batch_size:
            raise PvqInputError(f"text: too short for {batch_size} windows of {seq_len} tokens")
        offsets = rng.choice(len(ids) - seq_len + 1, size=batch_size, replace=False)
        out.append({"input_ids": torch.tensor([ids[o : o + seq_len] for o in offsets], dtype=torch.int64)})
    return out


def _sentence_batches(
    name: str, text: str, n: int, seed: int, batch_size: int
) -> list[dict[str, torch.Tensor]]:
    from pvq.models._lm import split_sentences
    from pvq.models._minilm import encode_batch

    rng = np.random.default_rng(seed)
    sentences = split_sentences(text)
    if not sentences:
        raise PvqInputError(f"{name}: no prose sentences (40-300 characters) in the text")
    picks = rng.choice(len(sentences), size=n * batch_size, replace=len(sentences) < n * batch_size)
    tok = get_tokenizer(name)
    return [
        encode_batch(tok, [sentences[i] for i in picks[b * batch_size : (b + 1) * batch_size]])
        for b in range(n)
    ]


def calibration_batches(
    name: str,
    n: int,
    seed: int = 0,
    batch_size: int = 8,
    seq_len: int = 128,
    *,
    text: str | None = None,
    disjoint: bool = False,
) -> list[torch.Tensor | dict[str, torch.Tensor]]:
    """``n`` batches of real inputs suited to the bundled model ``name`` (seeded, deterministic).

    - mobilenet_v2 / efficientnet_lite0: tensors (batch_size, 3, 224, 224): random crops of
      scikit-learn's sample photos (``disjoint``: from :data:`CALIBRATION_REGION` only), normalised as the
      model expects; call ``model(x)``.
    - minilm: dicts of (batch_size, T) ``input_ids``/``attention_mask``/``token_type_ids`` for
      sentences of the calibration part of Python's pydoc topics text; call ``model(**batch)``.
    - smollm2: dicts with ``input_ids`` (batch_size, seq_len): random windows of the same calibration part.
    ``text``: a user's text instead of the bundled one (used whole).
    """
    if n < 1 or batch_size < 1:
        raise PvqInputError(f"n/batch_size: must be >= 1, got {n}/{batch_size}")
    spec = input_spec(name)
    if spec.modality == "image":
        if text is not None:
            raise PvqInputError(f"{name}: an image model cannot calibrate on text")
        from pvq.data import imagenet_normalize, sample_photo_crops

        region = CALIBRATION_REGION if disjoint else (0.0, 1.0)
        x = imagenet_normalize(
            sample_photo_crops(n * batch_size, spec.size, seed, region), spec.mean, spec.std
        )
        return list(x.split(batch_size))
    source = calibration_text(name) if text is None else text
    if name == "minilm":
        return list(_sentence_batches(name, source, n, seed, batch_size))
    return text_windows(get_tokenizer(name), source, n, seed, batch_size, seq_len)


def evaluation_batches(
    name: str, n: int, seed: int = 0, batch_size: int = 8
) -> list[torch.Tensor | dict[str, torch.Tensor]]:
    """Held-out inputs disjoint from :func:`calibration_batches`: photo crops from :data:`EVALUATION_REGION`
    (image models) or sentences of :func:`evaluation_text` (minilm). For smollm2 use ``perplexity`` on
    :func:`evaluation_text`."""
    if n < 1 or batch_size < 1:
        raise PvqInputError(f"n/batch_size: must be >= 1, got {n}/{batch_size}")
    spec = input_spec(name)
    if spec.modality == "image":
        from pvq.data import imagenet_normalize, sample_photo_crops

        crops = sample_photo_crops(n * batch_size, spec.size, seed, EVALUATION_REGION)
        return list(imagenet_normalize(crops, spec.mean, spec.std).split(batch_size))
    if name == "minilm":
        return list(_sentence_batches(name, evaluation_text(name), n, seed, batch_size))
    raise PvqInputError(f"{name}: evaluate a causal LM with perplexity on evaluation_text('{name}')")
