"""Model sources: weight sets from modules, checkpoints, safetensors, HF folders, ONNX, GGUF; bundled models."""

from pvq.models._calibration import (
    HELD_OUT_TOKENS,
    calibration_batches,
    calibration_text,
    evaluation_batches,
    evaluation_text,
    held_out_chars,
)
from pvq.models._create import (
    InputSpec,
    create_model,
    get_tokenizer,
    input_spec,
    load_bundled,
    load_pretrained,
)
from pvq.models._efficientnet_lite import EfficientNetLite, efficientnet_lite0, timm_name
from pvq.models._imagenet import BUILDING_CLASSES, IMAGENET_NAMES
from pvq.models._lm import encode_ids, perplexity, split_sentences
from pvq.models._loading import KeyReport, load_exact
from pvq.models._minilm import embed_sentences, mean_pool
from pvq.models._mobilenetv2 import MobileNetV2, mobilenet_v2
from pvq.models._registry import BundledModel, bundled_names, bundled_path, list_bundled
from pvq.models._sources import WEIGHT_FILE_SUFFIXES, load_weights
from pvq.models._weightset import WeightInfo, WeightSet, classify_weight, from_module, from_state_dict

__all__ = [
    "BUILDING_CLASSES",
    "BundledModel",
    "HELD_OUT_TOKENS",
    "EfficientNetLite",
    "IMAGENET_NAMES",
    "InputSpec",
    "KeyReport",
    "MobileNetV2",
    "WEIGHT_FILE_SUFFIXES",
    "WeightInfo",
    "WeightSet",
    "bundled_names",
    "bundled_path",
    "calibration_batches",
    "calibration_text",
    "classify_weight",
    "create_model",
    "efficientnet_lite0",
    "embed_sentences",
    "evaluation_batches",
    "evaluation_text",
    "encode_ids",
    "from_module",
    "from_state_dict",
    "get_tokenizer",
    "held_out_chars",
    "input_spec",
    "list_bundled",
    "load_bundled",
    "load_exact",
    "load_pretrained",
    "load_weights",
    "mean_pool",
    "mobilenet_v2",
    "perplexity",
    "split_sentences",
    "timm_name",
]
