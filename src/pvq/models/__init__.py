"""Model sources: weight sets from modules, checkpoints, safetensors, HF folders, ONNX, GGUF; bundled models."""

from pvq.models._registry import BundledModel, bundled_names, bundled_path, list_bundled
from pvq.models._sources import WEIGHT_FILE_SUFFIXES, load_weights
from pvq.models._weightset import WeightInfo, WeightSet, classify_weight, from_module, from_state_dict

__all__ = [
    "BundledModel",
    "WEIGHT_FILE_SUFFIXES",
    "WeightInfo",
    "WeightSet",
    "bundled_names",
    "bundled_path",
    "classify_weight",
    "from_module",
    "from_state_dict",
    "list_bundled",
    "load_weights",
]
