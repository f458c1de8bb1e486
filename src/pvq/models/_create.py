"""``create_model``: pvq's runnable architecture for each bundled model, with its pretrained weights."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from pvq.errors import PvqInputError
from pvq.models._loading import KeyReport, load_exact
from pvq.models._registry import bundled_names, bundled_path

__all__ = ["create_model", "load_bundled", "load_pretrained", "get_tokenizer", "InputSpec", "input_spec"]


@dataclass(frozen=True)
class InputSpec:
    """What a bundled model eats: "image" (3, size, size) normalised by mean/std, or "text" token ids."""

    modality: str  # image | text
    size: int = 224
    resize: int = 256  # evaluation transform: shorter side -> resize, centre crop -> size
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


_SPECS = {
    "mobilenet_v2": InputSpec("image"),
    # TF-trained EfficientNet-Lite: inputs scaled to [-1, 1] ((x - 127) / 128 in TF), as timm's tf_efficientnet_lite0
    "efficientnet_lite0": InputSpec("image", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    "minilm": InputSpec("text"),
    "smollm2": InputSpec("text"),
}


def input_spec(name: str) -> InputSpec:
    _check(name)
    return _SPECS[name]


def _check(name: str) -> None:
    if name not in bundled_names():
        raise PvqInputError(f"{name}: not a bundled model (choose from {', '.join(bundled_names())})")


def _build(name: str, path: Path, empty: bool, backend: str) -> nn.Module:
    if name == "mobilenet_v2":
        from pvq.models._mobilenetv2 import mobilenet_v2

        return mobilenet_v2()
    if name == "efficientnet_lite0":
        from pvq.models._efficientnet_lite import efficientnet_lite0

        return efficientnet_lite0()
    if name == "minilm":
        from pvq.models._minilm import build_minilm

        return build_minilm(path, empty, backend)
    from pvq.models._smollm2 import build_llama

    return build_llama(path, empty, backend)


def load_pretrained(model: nn.Module, name: str) -> KeyReport:
    """Load the bundled weights of ``name`` into ``model``; the report lists missing/unexpected keys (none)."""
    _check(name)
    path = bundled_path(name)
    assert path is not None
    if name in ("mobilenet_v2", "efficientnet_lite0"):
        from pvq.models._files import read_state_dict

        return load_exact(model, read_state_dict(path), str(path))
    if name == "minilm":
        from pvq.models._minilm import load_minilm_weights

        return load_minilm_weights(model, path)
    from pvq.models._smollm2 import load_llama_weights

    return load_llama_weights(model, path)


def create_model(name: str, pretrained: bool = True, *, backend: str = "auto") -> nn.Module:
    """The bundled model ``name`` as a torch module in eval mode (weights loaded unless ``pretrained=False``).

    mobilenet_v2 / efficientnet_lite0: (B, 3, 224, 224) normalised images (``input_spec``) -> (B, 1000)
    logits. minilm: ``model(input_ids, attention_mask, token_type_ids)`` -> (B, 384) unit sentence
    embeddings. smollm2: a Llama causal LM, ``model(input_ids).logits`` -> (B, T, 49152); its weights
    were stored as Q4_1 and are already 4-bit. ``backend`` (minilm, smollm2): "auto", "transformers"
    or "pvq" (pvq's own BERT / Llama, same names and outputs; "auto" uses it when transformers is absent).
    """
    if pretrained:
        return load_bundled(name, backend=backend)[0]
    _check(name)
    path = bundled_path(name) if name in ("minilm", "smollm2") else Path(".")
    assert path is not None
    return _build(name, path, empty=False, backend=backend).eval()


def load_bundled(name: str, *, backend: str = "auto") -> tuple[nn.Module, KeyReport]:
    """``create_model(name)`` and the KeyReport of loading its file (no missing/unexpected keys, or an error)."""
    _check(name)
    path = bundled_path(name)
    assert path is not None
    model = _build(name, path, empty=True, backend=backend)
    report = load_pretrained(model, name)
    return model.eval(), report


def get_tokenizer(name: str) -> Any:
    """The ``tokenizers.Tokenizer`` of a bundled text model (minilm: WordPiece, padded; smollm2: byte BPE)."""
    _check(name)
    if input_spec(name).modality != "text":
        raise PvqInputError(f"{name}: an image model has no tokenizer")
    path = bundled_path(name)
    assert path is not None
    if name == "minilm":
        from pvq.models._minilm import minilm_tokenizer

        return minilm_tokenizer(path)
    from pvq.models._smollm2 import llama_tokenizer

    return llama_tokenizer(path)
