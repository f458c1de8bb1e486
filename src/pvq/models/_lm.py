"""Language-model helpers: token ids from any tokenizer, perplexity over fixed windows, sentences from text."""

from __future__ import annotations

import math
import re
from typing import Any

import torch

from pvq.errors import PvqInputError

__all__ = ["encode_ids", "perplexity", "split_sentences"]


def encode_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` from a ``tokenizers.Tokenizer`` or a ``transformers`` tokenizer, no special tokens."""
    try:
        enc = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        enc = tokenizer.encode(text)
    return list(enc.ids if hasattr(enc, "ids") else enc)


@torch.no_grad()
def perplexity(
    model: torch.nn.Module, tokenizer: Any, text: str, max_tokens: int = 1024, window: int = 256
) -> float:
    """Perplexity exp(mean NLL) of a causal LM on the first ``max_tokens`` tokens of ``text``.

    The tokens are cut into consecutive windows of ``window`` tokens; each window is scored on its own
    (every token but the first predicted from the ones before it in the window). ``model(input_ids)``
    must return logits (B, T, V) or an object with ``.logits``.
    """
    if max_tokens < 2 or window < 2:
        raise PvqInputError(f"max_tokens/window: need at least 2 tokens, got {max_tokens}/{window}")
    # tokenise only a prefix long enough for max_tokens (about 3-5 characters per token in English)
    ids = encode_ids(tokenizer, text[: max_tokens * 12])[:max_tokens]
    if len(ids) < 2:
        raise PvqInputError("text: fewer than 2 tokens, cannot compute perplexity")
    device = next(model.parameters()).device
    total_nll, count = 0.0, 0
    for start in range(0, len(ids), window):
        chunk = ids[start : start + window]
        if len(chunk) < 2:
            break
        x = torch.tensor([chunk], dtype=torch.int64, device=device)  # (1, T)
        out = model(input_ids=x)
        logits = (out.logits if hasattr(out, "logits") else out)[0, :-1].float()  # (T-1, V)
        nll = torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="sum")
        total_nll += float(nll)
        count += len(chunk) - 1
    return math.exp(total_nll / count)


def split_sentences(text: str, min_chars: int = 40, max_chars: int = 300) -> list[str]:
    """Prose sentences of ``text`` (whitespace collapsed) whose length lies in [min_chars, max_chars]."""
    flat = " ".join(text.split())
    out = []
    for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", flat):
        letters = sum(c.isalpha() or c == " " for c in s)
        if min_chars <= len(s) <= max_chars and letters >= 0.85 * len(s):
            out.append(s)
    return out
