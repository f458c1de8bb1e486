"""Llama-architecture GGUF files (SmolLM2): config, Hugging Face tensor names, model and tokenizer.

llama.cpp's converter renames tensors (``blk.0.attn_q.weight``) and permutes the rows of the query
and key projections (for its rotary-embedding layout); here both are undone, so the weights load
into ``transformers``' ``LlamaForCausalLM`` unchanged. The token embedding doubles as the LM head
when the file has no ``output.weight`` (tied embeddings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pvq.errors import PvqInputError
from pvq.models._gguf import dequantize_tensor, gguf_metadata, gguf_weight_info, open_gguf
from pvq.models._gguf_file import GGUFFile, GGUFTensor
from pvq.models._weightset import WeightInfo, WeightSet

__all__ = [
    "LlamaGGUFConfig",
    "llama_config",
    "hf_name",
    "llama_weightset",
    "llama_state_dict",
    "gguf_tokenizer",
]

_LAYER_MAP = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_TOP_MAP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_BLK = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")


@dataclass(frozen=True)
class LlamaGGUFConfig:
    """The hyper-parameters of a Llama GGUF file (GGUF ``llama.*`` metadata)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int
    rope_theta: float
    rms_norm_eps: float
    tie_word_embeddings: bool
    bos_token_id: int | None
    eos_token_id: int | None

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads or self.num_attention_heads % self.num_key_value_heads:
            raise PvqInputError("GGUF: inconsistent head counts in llama.* metadata")


def llama_config(reader: GGUFFile, path: Path) -> LlamaGGUFConfig:
    meta = gguf_metadata(reader)
    if meta.get("general.architecture") != "llama":
        raise PvqInputError(
            f"{path}: GGUF architecture is {meta.get('general.architecture')!r}, expected 'llama'"
        )
    names = {t.name for t in reader.tensors}
    try:
        n_head = int(meta["llama.attention.head_count"])
        vocab = int(meta.get("llama.vocab_size") or len(meta["tokenizer.ggml.tokens"]))
        return LlamaGGUFConfig(
            vocab_size=vocab,
            hidden_size=int(meta["llama.embedding_length"]),
            intermediate_size=int(meta["llama.feed_forward_length"]),
            num_hidden_layers=int(meta["llama.block_count"]),
            num_attention_heads=n_head,
            num_key_value_heads=int(meta.get("llama.attention.head_count_kv", n_head)),
            max_position_embeddings=int(meta.get("llama.context_length", 2048)),
            rope_theta=float(meta.get("llama.rope.freq_base", 10000.0)),
            rms_norm_eps=float(meta["llama.attention.layer_norm_rms_epsilon"]),
            tie_word_embeddings="output.weight" not in names,
            bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
            eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
        )
    except KeyError as exc:
        raise PvqInputError(f"{path}: GGUF metadata lacks {exc.args[0]}") from None


def hf_name(gguf_name: str) -> str | None:
    """GGUF tensor name -> Hugging Face Llama name (None if unknown)."""
    m = _BLK.match(gguf_name)
    if m:
        sub = _LAYER_MAP.get(m.group(2))
        return f"model.layers.{m.group(1)}.{sub}.{m.group(3)}" if sub else None
    stem, _, suffix = gguf_name.rpartition(".")
    top = _TOP_MAP.get(stem)
    return f"{top}.{suffix}" if top else None


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's q/k row permutation: rows grouped (head, pair, half) -> (head, half, pair)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tensor_in_hf_layout(t: GGUFTensor, cfg: LlamaGGUFConfig) -> np.ndarray:
    arr = dequantize_tensor(t)
    if ".attn_q." in t.name:
        arr = _unpermute(arr, cfg.num_attention_heads)
    elif ".attn_k." in t.name:
        arr = _unpermute(arr, cfg.num_key_value_heads)
    return arr


def llama_weightset(path: Path, kinds: tuple[str, ...]) -> WeightSet:
    """The weights of a Llama GGUF file under Hugging Face names, dequantized lazily (q/k un-permuted)."""
    reader = open_gguf(path)
    cfg = llama_config(reader, path)
    infos: dict[str, WeightInfo] = {}
    by_name: dict[str, GGUFTensor] = {}
    for t in reader.tensors:
        name = hf_name(t.name)
        if name is None:
            continue
        info = gguf_weight_info(name, t, kinds)
        if info is None:
            continue
        infos[name] = info
        by_name[name] = t
    if not infos:
        raise PvqInputError(f"{path}: no {'/'.join(kinds)} weights found")
    notes = []
    if cfg.tie_word_embeddings:
        notes.append("lm_head is tied to model.embed_tokens (listed once, as the embedding)")

    def loader(name: str) -> torch.Tensor:
        return torch.from_numpy(_tensor_in_hf_layout(by_name[name], cfg))

    return WeightSet(infos, loader, str(path), notes)


def llama_state_dict(path: Path) -> tuple[LlamaGGUFConfig, dict[str, torch.Tensor]]:
    """Config and full float32 state dict (Hugging Face names) of a Llama GGUF file."""
    reader = open_gguf(path)
    cfg = llama_config(reader, path)
    state: dict[str, torch.Tensor] = {}
    for t in reader.tensors:
        name = hf_name(t.name)
        if name is None:
            raise PvqInputError(f"{path}: unexpected tensor {t.name!r} for a Llama model")
        state[name] = torch.from_numpy(_tensor_in_hf_layout(t, cfg))
    return cfg, state


def gguf_tokenizer(path: Path) -> Any:
    """The byte-level BPE tokenizer stored in a GGUF file (``tokenizer.ggml.model == "gpt2"``), as a
    ``tokenizers.Tokenizer``; digits are split one by one (llama.cpp's "smollm"/"llama3"-style
    pre-tokenizers do the same, as SmolLM2's own tokenizer.json)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    meta = gguf_metadata(open_gguf(path))
    if meta.get("tokenizer.ggml.model") != "gpt2":
        raise PvqInputError(
            f"{path}: tokenizer {meta.get('tokenizer.ggml.model')!r} not supported (need 'gpt2' BPE)"
        )
    tokens = meta["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    types = meta.get("tokenizer.ggml.token_type") or []
    specials = [t for t, ty in zip(tokens, types, strict=False) if ty == 3]
    tok.add_special_tokens(specials)
    return tok
