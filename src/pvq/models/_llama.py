"""A small Llama decoder of pvq's own (SmolLM2 without ``transformers``).

Module and parameter names equal Hugging Face's ``LlamaForCausalLM`` (``model.layers.i.self_attn.q_proj``,
``mlp.gate_proj``, ``input_layernorm``, ...), so the same state dict loads into either. Pre-RMSNorm
blocks, rotary position embeddings (rotate-half layout, as Hugging Face), grouped-query attention,
SwiGLU MLP, LM head tied to the token embedding when the checkpoint has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pvq.models._llama_gguf import LlamaGGUFConfig

__all__ = ["LlamaLM", "LMOutput", "empty_llama"]


@dataclass
class LMOutput:
    logits: torch.Tensor  # (B, T, vocab)


class _RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class _Attention(nn.Module):
    def __init__(self, c: LlamaGGUFConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv = c.num_attention_heads, c.num_key_value_heads
        self.head_dim = c.hidden_size // c.num_attention_heads
        self.q_proj = nn.Linear(c.hidden_size, self.n_head * self.head_dim, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, self.n_kv * self.head_dim, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, self.n_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_head * self.head_dim, c.hidden_size, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)  # (B, nkv, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin  # rotary embedding
        k = k * cos + _rotate_half(k) * sin
        rep = self.n_head // self.n_kv  # grouped-query attention: each kv head serves `rep` query heads
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class _MLP(nn.Module):
    def __init__(self, c: LlamaGGUFConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))  # SwiGLU


class _Block(nn.Module):
    def __init__(self, c: LlamaGGUFConfig) -> None:
        super().__init__()
        self.input_layernorm = _RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = _Attention(c)
        self.post_attention_layernorm = _RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = _MLP(c)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class _Decoder(nn.Module):
    def __init__(self, c: LlamaGGUFConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(_Block(c) for _ in range(c.num_hidden_layers))
        self.norm = _RMSNorm(c.hidden_size, c.rms_norm_eps)


class LlamaLM(nn.Module):
    """Causal LM: ``model(input_ids (B, T), attention_mask (B, T) | None).logits`` -> (B, T, vocab)."""

    def __init__(self, config: LlamaGGUFConfig) -> None:
        super().__init__()
        self.config = config
        self.model = _Decoder(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.register_buffer("inv_freq", torch.empty(0), persistent=False)
        self.finish_init()

    def finish_init(self) -> None:
        """Tie the LM head (if the config says so) and compute the rotary frequencies; call again after
        ``to_empty`` (see ``empty_llama``)."""
        c = self.config
        if c.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        head_dim = c.hidden_size // c.num_attention_heads
        exponent = (
            torch.arange(0, head_dim, 2, dtype=torch.int64, device=self.lm_head.weight.device).float()
            / head_dim
        )
        self.inv_freq = 1.0 / c.rope_theta**exponent  # (hd/2,)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> LMOutput:
        B, T = input_ids.shape
        pos = torch.arange(T, device=input_ids.device, dtype=torch.float32)
        freqs = torch.outer(pos, self.inv_freq)  # (T, hd/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (T, hd)
        x = self.model.embed_tokens(input_ids)  # (B, T, H)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            mask = causal[None, None] & attention_mask.bool()[:, None, None, :]  # (B, 1, T, T)
        for block in self.model.layers:
            x = block(x, cos, sin, mask)
        return LMOutput(self.lm_head(self.model.norm(x)))


def empty_llama(config: LlamaGGUFConfig) -> LlamaLM:
    """A LlamaLM with uninitialised weights (built on the meta device, then allocated): for loading a checkpoint."""
    with torch.device("meta"):
        model = LlamaLM(config)
    model = model.to_empty(device="cpu")
    model.finish_init()
    return model
