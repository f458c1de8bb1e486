"""Deployment reality: export to ONNX (BN folded; int8 QDQ static/dynamic through ONNX Runtime; structurally
pruned networks via torch-pruning), then real bytes on disk, peak memory and latency on a real runtime, with
each option's quality on held-out data (:func:`pvq.evaluate.evaluate`)."""

from pvq.deploy._export import OPSET, export_onnx
from pvq.deploy._fold import FoldReport, fold_batchnorm
from pvq.deploy._measure import Latency, child_peak_mb, time_call, time_pair
from pvq.deploy._options import DEFAULT_OPTIONS, LM_OPTIONS, OPTIONS, RUNTIMES, DeployOption, parse_option
from pvq.deploy._ort import QUANT_MODES, OrtModule, ort_session, quantize_onnx
from pvq.deploy._prune import ROUND_TO, StructuredResult, prunable_weights, structured_prune
from pvq.deploy._result import DeployResult, DeployRow
from pvq.deploy._run import LM_TOKENS, DeployConfig, deploy, evaluation_inputs

__all__ = [
    "DEFAULT_OPTIONS",
    "LM_OPTIONS",
    "OPSET",
    "OPTIONS",
    "QUANT_MODES",
    "ROUND_TO",
    "RUNTIMES",
    "LM_TOKENS",
    "DeployConfig",
    "DeployOption",
    "DeployResult",
    "DeployRow",
    "FoldReport",
    "Latency",
    "OrtModule",
    "StructuredResult",
    "child_peak_mb",
    "deploy",
    "evaluation_inputs",
    "export_onnx",
    "fold_batchnorm",
    "ort_session",
    "parse_option",
    "prunable_weights",
    "quantize_onnx",
    "structured_prune",
    "time_call",
    "time_pair",
]
