"""Calibration inputs for the bundled models: real photos for the CNNs, real text for the transformers."""

from __future__ import annotations

import numpy as np
import torch

from pvq.errors import PvqInputError
from pvq.models._create import get_tokenizer, input_spec

__all__ = ["calibration_batches"]


def calibration_batches(
    name: str, n: int, seed: int = 0, batch_size: int = 8, seq_len: int = 128
) -> list[torch.Tensor | dict[str, torch.Tensor]]:
    """``n`` batches of real inputs suited to the bundled model ``name`` (seeded, deterministic).

    - mobilenet_v2 / efficientnet_lite0: tensors (batch_size, 3, 224, 224): random crops of
      scikit-learn's sample photos, normalised as the model expects; call ``model(x)``.
    - minilm: dicts of (batch_size, T) ``input_ids``/``attention_mask``/``token_type_ids`` for
      sentences drawn from Python's pydoc topics text; call ``model(**batch)``.
    - smollm2: dicts with ``input_ids`` (batch_size, seq_len): random windows of the same text.
    """
    if n < 1 or batch_size < 1:
        raise PvqInputError(f"n/batch_size: must be >= 1, got {n}/{batch_size}")
    spec = input_spec(name)
    if spec.modality == "image":
        from pvq.data import imagenet_normalize, sample_photo_crops

        x = imagenet_normalize(sample_photo_crops(n * batch_size, spec.size, seed), spec.mean, spec.std)
        return list(x.split(batch_size))
    from pvq.data import perplexity_text
    from pvq.models._lm import encode_ids, split_sentences

    rng = np.random.default_rng(seed)
    text = perplexity_text()
    tok = get_tokenizer(name)
    if name == "minilm":
        from pvq.models._minilm import encode_batch

        sentences = split_sentences(text)
        picks = rng.choice(len(sentences), size=n * batch_size, replace=len(sentences) < n * batch_size)
        return [
            encode_batch(tok, [sentences[i] for i in picks[b * batch_size : (b + 1) * batch_size]])
            for b in range(n)
        ]
    if seq_len < 2:
        raise PvqInputError(f"seq_len: must be >= 2, got {seq_len}")
    # tokenise a random stretch of the text long enough for this batch's windows
    need = seq_len * batch_size * 6  # characters (about 4 per token, with margin)
    out: list[torch.Tensor | dict[str, torch.Tensor]] = []
    for _ in range(n):
        start = int(rng.integers(0, max(1, len(text) - need)))
        ids = encode_ids(tok, text[start : start + need])
        if len(ids) < seq_len * batch_size:
            raise PvqInputError(f"{name}: text too short for {batch_size} windows of {seq_len} tokens")
        offsets = rng.choice(len(ids) - seq_len + 1, size=batch_size, replace=False)
        out.append({"input_ids": torch.tensor([ids[o : o + seq_len] for o in offsets], dtype=torch.int64)})
    return out
