"""``load_weights``: one entry point from any model source to a WeightSet."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from pvq.errors import PvqInputError
from pvq.models._weightset import KINDS, WeightSet, from_module, from_state_dict

__all__ = ["load_weights", "WEIGHT_FILE_SUFFIXES", "DEFAULT_MAX_ELEMENTS"]

WEIGHT_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".onnx", ".gguf")
# Largest tensor pvq will read (elements): 2e10 is ~20x the largest tensor of a 70B Llama (its vocabulary
# embedding, 128256 x 8192 = 1.05e9) and 80 GB as float32, so in practice only a file that lies reaches it.
DEFAULT_MAX_ELEMENTS = 20_000_000_000


def load_weights(
    source: str | os.PathLike[str] | nn.Module | Mapping[str, torch.Tensor],
    kinds: tuple[str, ...] = ("conv", "linear"),
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> WeightSet:
    """Load the weight set of a model: name -> float32 tensor with its layer kind.

    ``source`` is a bundled model name (``list_bundled()``: "mobilenet_v2", "efficientnet_lite0",
    "minilm", "smollm2"), a file (``.pt/.pth/.bin/.ckpt`` state dict loaded with
    ``weights_only=True``; ``.safetensors``, read lazily; ``.onnx`` initializers; ``.gguf``,
    dequantized), a Hugging Face model folder, an ``nn.Module`` or a mapping name -> tensor.
    ``kinds`` selects layer kinds among conv, linear, embedding, other (default: conv and linear
    weights with ndim >= 2). A tensor of more than ``max_elements`` elements is refused from the file's
    header/shapes, before any tensor is copied or dequantized (``--max-elements``). Bad input raises PvqInputError with a one-line message naming it.
    """
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if not kinds or bad:
        raise PvqInputError(f"kinds: must be a non-empty subset of {KINDS}, got {kinds}")
    if isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 1:
        raise PvqInputError(f"--max-elements: must be a positive integer, got {max_elements!r}")
    ws = _load(source, kinds)
    big = next((i for i in ws.infos.values() if i.numel > max_elements), None)
    if big is not None:
        raise PvqInputError(
            f"{ws.source}: tensor '{big.name}' has {big.numel} elements {big.shape}, over --max-elements "
            f"{max_elements}; raise the limit if the file is genuine"
        )
    return ws


def _load(
    source: str | os.PathLike[str] | nn.Module | Mapping[str, torch.Tensor], kinds: tuple[str, ...]
) -> WeightSet:
    if isinstance(source, nn.Module):
        return from_module(source, source=type(source).__name__, kinds=kinds)
    if isinstance(source, Mapping):
        return from_state_dict(source, source="<state_dict>", kinds=kinds)
    if not isinstance(source, (str, os.PathLike)):
        raise PvqInputError(
            f"source: expected a path, bundled model name, nn.Module or mapping, got {type(source).__name__}"
        )
    text = os.fspath(source)
    path = Path(text).expanduser()
    from pvq.models._registry import bundled_names, load_bundled_weights

    if isinstance(source, str) and text in bundled_names():
        # a bare bundled name is the bundled model even when ./NAME exists (write ./NAME or pass a Path for that)
        ws = load_bundled_weights(text, kinds)
        if path.exists():
            ws.notes = [
                *getattr(ws, "notes", []),
                f"'{text}' is the bundled model; the local ./{text} was not used (write ./{text} to use it)",
            ]
        return ws
    if not path.exists():
        hint = "" if path.suffix else f" (and not a bundled model: {', '.join(bundled_names())})"
        raise PvqInputError(f"{path}: file not found{hint}")
    if path.is_dir():
        from pvq.models._files import load_hf_folder

        return load_hf_folder(path, kinds)
    if not os.access(path, os.R_OK):
        raise PvqInputError(f"{path}: file is not readable (permission denied)")
    if path.stat().st_size == 0:
        raise PvqInputError(f"{path}: file is empty")
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth", ".bin", ".ckpt"):
        from pvq.models._files import load_torch_file

        return load_torch_file(path, kinds)
    if suffix == ".safetensors":
        from pvq.models._files import load_safetensors

        return load_safetensors(path, kinds)
    if suffix == ".onnx":
        from pvq.models._onnx import load_onnx

        return load_onnx(path, kinds)
    if suffix == ".gguf":
        from pvq.models._gguf import load_gguf

        return load_gguf(path, kinds)
    raise PvqInputError(
        f"{path}: unknown model format '{suffix or '(no extension)'}' (use one of {', '.join(WEIGHT_FILE_SUFFIXES)} or a Hugging Face folder)"
    )
