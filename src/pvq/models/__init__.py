"""Model sources: weight sets from modules, checkpoints, safetensors, HF folders, ONNX, GGUF; bundled models."""

from pvq.models._weightset import WeightInfo, WeightSet, classify_weight, from_module, from_state_dict

__all__ = ["WeightInfo", "WeightSet", "classify_weight", "from_module", "from_state_dict"]
