"""SmolLM2-135M from its GGUF file, run by ``transformers``' LlamaForCausalLM (no accelerate needed).

transformers' own GGUF loading (``from_pretrained(..., gguf_file=...)``) requires ``accelerate``;
pvq instead reads the GGUF itself (config, dequantized weights with llama.cpp's q/k permutation
undone, tokenizer) and loads them into a LlamaForCausalLM. The weights were stored as Q4_1, so
the model is already 4-bit: its outputs are those of the quantized model.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

import torch

from pvq.errors import PvqInputError
from pvq.models._gguf import open_gguf
from pvq.models._llama_gguf import LlamaGGUFConfig, gguf_tokenizer, llama_config, llama_state_dict
from pvq.models._loading import KeyReport, hf_construct, load_exact

__all__ = ["build_llama", "load_llama_weights", "llama_tokenizer"]


def _hf_config(cfg: LlamaGGUFConfig) -> Any:
    try:
        from transformers import LlamaConfig
    except ImportError:
        raise PvqInputError("smollm2: needs the 'transformers' package (pip install transformers)") from None
    kwargs: dict[str, Any] = dict(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        rms_norm_eps=cfg.rms_norm_eps,
        tie_word_embeddings=cfg.tie_word_embeddings,
        bos_token_id=cfg.bos_token_id,
        eos_token_id=cfg.eos_token_id,
        hidden_act="silu",
    )
    if "rope_parameters" in inspect.signature(LlamaConfig.__init__).parameters:
        kwargs["rope_parameters"] = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    else:  # transformers < 5
        kwargs["rope_theta"] = cfg.rope_theta
    return LlamaConfig(**kwargs)


def build_llama(path: Path, empty: bool = False, backend: str = "auto") -> torch.nn.Module:
    """A Llama causal LM shaped as the GGUF file's metadata says (random init; uninitialised if ``empty``).

    ``backend``: "transformers" (LlamaForCausalLM), "pvq" (pvq's own decoder, same names), or "auto"
    (transformers when installed, else pvq's). Both return an object with ``.logits`` (B, T, vocab).
    """
    if backend not in ("auto", "transformers", "pvq"):
        raise PvqInputError(f"backend: must be auto, transformers or pvq, got {backend!r}")
    cfg = llama_config(open_gguf(path), path)
    if backend == "pvq" or (backend == "auto" and importlib.util.find_spec("transformers") is None):
        from pvq.models._llama import LlamaLM, empty_llama

        return (empty_llama(cfg) if empty else LlamaLM(cfg)).eval()
    from transformers import LlamaForCausalLM

    return hf_construct(LlamaForCausalLM, _hf_config(cfg), empty).eval()


def load_llama_weights(model: torch.nn.Module, path: Path) -> KeyReport:
    _, state = llama_state_dict(path)
    return load_exact(model, state, str(path))


def llama_tokenizer(path: Path) -> Any:
    return gguf_tokenizer(path)
