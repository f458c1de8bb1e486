"""perplexity() against closed forms, and the helpers around it."""

from __future__ import annotations

import math

import pytest
import torch

from pvq.errors import PvqInputError
from pvq.models import perplexity, split_sentences


class ByteTokenizer:
    """A real (if simple) tokenizer: one token per UTF-8 byte."""

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))


class UniformLM(torch.nn.Module):
    """Predicts every one of V tokens with probability 1/V: perplexity is exactly V."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*input_ids.shape, self.vocab) + self.dummy


class OracleLM(UniformLM):
    """Knows the next byte of a repeating "ab" text: puts logit 20 on it -> perplexity (V-1)e^-20 + 1."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*input_ids.shape, self.vocab)
        nxt = torch.where(input_ids == ord("a"), ord("b"), ord("a"))
        return logits.scatter(-1, nxt.unsqueeze(-1), 20.0) + self.dummy


def test_uniform_model_has_perplexity_vocab() -> None:
    assert perplexity(
        UniformLM(256), ByteTokenizer(), "hello world " * 20, max_tokens=100, window=32
    ) == pytest.approx(256)


def test_oracle_model() -> None:
    v = 256
    expected = math.exp(math.log1p((v - 1) * math.exp(-20.0)))
    assert perplexity(OracleLM(v), ByteTokenizer(), "ab" * 200, max_tokens=300, window=64) == pytest.approx(
        expected, rel=1e-6
    )


def test_perplexity_bad_input() -> None:
    with pytest.raises(PvqInputError, match="text"):
        perplexity(UniformLM(8), ByteTokenizer(), "a", max_tokens=10)
    with pytest.raises(PvqInputError, match="max_tokens"):
        perplexity(UniformLM(8), ByteTokenizer(), "abc", max_tokens=1)


def test_split_sentences() -> None:
    text = "This is the first sentence of the text. And here is a second one that is long enough!\n X = 1; y = 2."
    out = split_sentences(text, min_chars=20)
    assert out == ["This is the first sentence of the text.", "And here is a second one that is long enough!"]
