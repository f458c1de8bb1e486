"""A small BERT encoder of pvq's own (used for MiniLM when ``transformers`` is not installed).

Module and parameter names equal Hugging Face's ``BertModel`` (``embeddings.word_embeddings``,
``encoder.layer.i.attention.self.query``, ...), so the same safetensors file loads into either.
Post-LayerNorm transformer (Devlin et al. 2019) with exact (erf) GELU, as BERT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from pvq.errors import PvqInputError

__all__ = ["BertConfigLite", "BertSentenceEncoder"]


@dataclass(frozen=True)
class BertConfigLite:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise PvqInputError("config.json: hidden_size must be a multiple of num_attention_heads")

    @classmethod
    def from_json(cls, path: Path) -> BertConfigLite:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise PvqInputError(f"{path}: cannot read BERT config ({exc})") from None
        if (
            raw.get("hidden_act", "gelu") != "gelu"
            or raw.get("position_embedding_type", "absolute") != "absolute"
        ):
            raise PvqInputError(
                f"{path}: only absolute positions and GELU are supported without transformers"
            )
        fields = cls.__dataclass_fields__
        return cls(**{k: raw[k] for k in fields if k in raw})


class _Embeddings(nn.Module):
    def __init__(self, c: BertConfigLite) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.register_buffer("position_ids", torch.arange(c.max_position_embeddings)[None], persistent=False)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        pos = self.position_ids[:, : input_ids.shape[1]]  # (1, T)
        x = (
            self.word_embeddings(input_ids)
            + self.token_type_embeddings(token_type_ids)
            + self.position_embeddings(pos)
        )
        return self.LayerNorm(x)  # (B, T, H)


class _SelfAttention(nn.Module):
    def __init__(self, c: BertConfigLite) -> None:
        super().__init__()
        self.n_head = c.num_attention_heads
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        q, k, v = (
            lin(x).view(B, T, self.n_head, H // self.n_head).transpose(1, 2)
            for lin in (self.query, self.key, self.value)
        )
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep[:, None, None, :])  # (B, nh, T, hd)
        return y.transpose(1, 2).reshape(B, T, H)


class _DenseNorm(nn.Module):
    """dense -> dropout(none at eval) -> LayerNorm(residual + .): BertSelfOutput / BertOutput."""

    def __init__(self, d_in: int, d_out: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(h) + residual)


class _Attention(nn.Module):
    def __init__(self, c: BertConfigLite) -> None:
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _DenseNorm(c.hidden_size, c.hidden_size, c.layer_norm_eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, keep), x)


class _Intermediate(nn.Module):
    def __init__(self, c: BertConfigLite) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # exact erf GELU


class _Layer(nn.Module):
    def __init__(self, c: BertConfigLite) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _DenseNorm(c.intermediate_size, c.hidden_size, c.layer_norm_eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        a = self.attention(x, keep)
        return self.output(self.intermediate(a), a)


class _Encoder(nn.Module):
    def __init__(self, c: BertConfigLite) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(c) for _ in range(c.num_hidden_layers))


class _Pooler(nn.Module):
    def __init__(self, c: BertConfigLite) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)


class BertSentenceEncoder(nn.Module):
    """BERT + mean pooling + L2 norm: ``forward(input_ids, attention_mask, token_type_ids)`` -> (B, H) unit vectors.

    The pooler (``pooler.dense``) is kept so the checkpoint loads exactly, but sentence-transformers'
    mean pooling does not use it.
    """

    def __init__(self, config: BertConfigLite) -> None:
        super().__init__()
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)
        self.pooler = _Pooler(config)
        for m in self.modules():  # BERT's initialisation, for use without a checkpoint
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def hidden_states(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Last-layer token vectors (B, T, H)."""
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise PvqInputError(
                f"input_ids: {input_ids.shape[1]} tokens > {self.config.max_position_embeddings}"
            )
        tt = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        x = self.embeddings(input_ids, tt)
        keep = attention_mask.bool()  # (B, T): True where a token may be attended to
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return x

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        h = self.hidden_states(input_ids, attention_mask, token_type_ids)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)  # mean over real tokens
        return F.normalize(pooled, dim=-1)
