"""all-MiniLM-L6-v2 as a sentence encoder: ``transformers``' BERT + mean pooling + L2 normalisation.

Same as sentence-transformers' pipeline for this model (modules.json: Transformer -> Pooling(mean)
-> Normalize), with module names equal to the file's keys (``embeddings.*``, ``encoder.layer.*``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pvq.errors import PvqInputError
from pvq.models._loading import KeyReport, hf_construct, load_exact

__all__ = ["build_minilm", "load_minilm_weights", "minilm_tokenizer", "embed_sentences", "mean_pool"]

MAX_SEQ_LENGTH = 256  # sentence_bert_config.json


def _bert_classes() -> tuple[Any, Any]:
    try:
        from transformers import BertConfig, BertModel
    except ImportError:
        raise PvqInputError("minilm: needs the 'transformers' package (pip install transformers)") from None
    return BertConfig, BertModel


def build_minilm(folder: Path, empty: bool = False, backend: str = "auto") -> torch.nn.Module:
    """A MiniLM sentence encoder with the folder's config.json, random init (uninitialised if ``empty``):
    forward -> (B, 384) unit vectors.

    ``backend``: "transformers" (BertModel), "pvq" (pvq's own BERT, same keys and outputs), or "auto"
    (transformers when installed, else pvq's).
    """
    if backend not in ("auto", "transformers", "pvq"):
        raise PvqInputError(f"backend: must be auto, transformers or pvq, got {backend!r}")
    if backend == "pvq" or (backend == "auto" and not _has_transformers()):
        from pvq.models._bert import BertConfigLite, BertSentenceEncoder

        return BertSentenceEncoder(BertConfigLite.from_json(folder / "config.json")).eval()
    BertConfig, BertModel = _bert_classes()

    class MiniLMEncoder(BertModel):  # type: ignore[misc, valid-type]
        """BertModel whose forward returns mean-pooled, L2-normalised sentence embeddings (B, hidden)."""

        def forward(  # type: ignore[override]
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor | None = None,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            hidden = (
                super()
                .forward(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
                .last_hidden_state
            )  # (B, T, H)
            return torch.nn.functional.normalize(mean_pool(hidden, attention_mask), dim=-1)

    config = BertConfig.from_json_file(str(folder / "config.json"))
    return hf_construct(MiniLMEncoder, config, empty).eval()


def _has_transformers() -> bool:
    import importlib.util

    return importlib.util.find_spec("transformers") is not None


def load_minilm_weights(model: torch.nn.Module, folder: Path) -> KeyReport:
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    return load_exact(model, state, str(folder / "model.safetensors"))


def minilm_tokenizer(folder: Path) -> Any:
    """The model's WordPiece tokenizer (``tokenizers``), truncating to 256 tokens and padding batches."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(MAX_SEQ_LENGTH)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def encode_batch(tokenizer: Any, sentences: list[str]) -> dict[str, torch.Tensor]:
    """Sentences -> {"input_ids", "attention_mask", "token_type_ids"}, each (B, T) int64."""
    encs = tokenizer.encode_batch(sentences)
    return {
        "input_ids": torch.tensor([e.ids for e in encs], dtype=torch.int64),
        "attention_mask": torch.tensor([e.attention_mask for e in encs], dtype=torch.int64),
        "token_type_ids": torch.tensor([e.type_ids for e in encs], dtype=torch.int64),
    }


@torch.no_grad()
def embed_sentences(model: torch.nn.Module, tokenizer: Any, sentences: list[str]) -> torch.Tensor:
    """(N, 384) unit-norm sentence embeddings: cosine similarity is their dot product."""
    if not sentences:
        raise PvqInputError("sentences: need at least one sentence")
    return model(**encode_batch(tokenizer, list(sentences)))


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of token vectors (B, T, H) over the tokens where mask (B, T) is 1 -> (B, H)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
