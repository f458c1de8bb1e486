"""ONNX Runtime: sessions with pinned threads, a session wrapped as an ``nn.Module`` (for :func:`pvq.evaluate`),
and int8 QDQ quantization of an exported model, static (calibrated activation ranges) or dynamic.

Static quantization runs ``onnxruntime.quantization.quantize_static`` with a ``CalibrationDataReader`` over
pvq's calibration batches (MinMax ranges, QDQ format, uint8 activations, int8 per-channel weights: ORT's
recommended CPU setting). Dynamic quantization stores int8 per-channel weights and quantizes activations at run
time (``ConvInteger``/``MatMulInteger``). Every weight-carrying node (Conv, ConvTranspose, Gemm, MatMul with a
constant weight) must come out quantized: ONNX Runtime silently leaves ops it has no quantizer for in float, and
pvq refuses that (PvqInputError naming the op and the layer) rather than report a half-int8 model as int8.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pvq.errors import PvqInputError

__all__ = ["QUANT_MODES", "OrtModule", "ort_session", "quantize_onnx"]

QUANT_MODES = ("static", "dynamic")
_WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise PvqInputError("onnxruntime: not installed (pip install 'pvq[deploy]')") from None
    ort.set_default_logger_severity(3)  # errors only: its graph-cleaning warnings are not the user's business
    return ort


def _layer(node_name: str) -> str:
    """The module path of an ONNX node named by the TorchScript exporter: ``/features/features.1/conv/conv.0/
    conv.0.0/Conv`` -> ``features.1.conv.0.0`` (each scope repeats its parent's name plus the child's)."""
    comps = [p for p in node_name.split("/") if p][:-1]
    if not comps:
        return node_name or "?"
    path: list[str] = []
    prev = ""
    for c in comps:
        path.append(c[len(prev) + 1 :] if prev and c.startswith(prev + ".") else c)
        prev = c
    return ".".join(path)


def ort_session(path: str | os.PathLike[str], threads: int) -> Any:
    """An ``InferenceSession`` on the CPU provider with ``threads`` intra-op threads and one inter-op thread.
    A node the runtime has no kernel for -> PvqInputError naming the op and the node."""
    ort = _ort()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        msg = " ".join(str(exc).split())
        import re

        m = re.search(r"implementation for (\w+)\(\d+\) node with name '([^']*)'", msg)
        if m:
            raise PvqInputError(
                f"onnxruntime: no CPU kernel for op {m.group(1)} in layer {_layer(m.group(2))} "
                f"(node {m.group(2)}) of {Path(path).name}"
            ) from None
        raise PvqInputError(f"onnxruntime: cannot load {Path(path).name} ({msg[:300]})") from None


class OrtModule(nn.Module):
    """An ONNX Runtime session called like the PyTorch model it was exported from: ``m(x)`` or ``m(**batch)``
    -> the first output as a float32 torch tensor. Only for inference (no autograd)."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.input_names = [i.name for i in session.get_inputs()]

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        feed = dict(zip(self.input_names, args, strict=False)) if args else {}
        feed.update({k: v for k, v in kwargs.items() if k in self.input_names})
        out = self.session.run(None, {k: v.detach().cpu().numpy() for k, v in feed.items()})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


def _weight_nodes(model: Any) -> list[tuple[str, str]]:
    """(op, node name) of the nodes whose weight (input 1) is a float initializer: what int8 must cover."""
    inits = {i.name for i in model.graph.initializer if i.data_type in (1, 10, 11)}  # float, float16, double
    consts = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [
        (n.op_type, n.name)
        for n in model.graph.node
        if n.op_type in _WEIGHT_OPS and len(n.input) > 1 and (n.input[1] in inits or n.input[1] in consts)
    ]


def quantize_onnx(
    fp32_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    mode: str,
    calibration: Iterable[Mapping[str, np.ndarray]] | None = None,
) -> Path:
    """Quantize the FP32 ONNX file ``fp32_path`` to int8 QDQ (``mode="static"``, needs ``calibration``: feeds
    of named numpy inputs) or dynamic int8 (``mode="dynamic"``) and write ``out_path`` atomically.

    A weight-carrying node left in float (an op ONNX Runtime cannot quantize in this mode) -> PvqInputError
    naming the op and the layer; nothing is written then.
    """
    import onnx

    _ort()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if mode not in QUANT_MODES:
        raise PvqInputError(f"mode: must be one of {', '.join(QUANT_MODES)}, got {mode!r}")
    out_path = Path(out_path)
    wanted = _weight_nodes(onnx.load(str(fp32_path), load_external_data=False))
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    os.close(fd)
    level = logging.getLogger().level
    logging.getLogger().setLevel(
        logging.ERROR
    )  # its "consider pre-processing" advice goes to the root logger
    try:
        if mode == "static":
            if calibration is None:
                raise PvqInputError("static quantization needs calibration batches")
            feeds = iter(list(calibration))

            class _Reader(CalibrationDataReader):  # type: ignore[misc]
                def get_next(self) -> dict[str, np.ndarray] | None:
                    return next(feeds, None)

            quantize_static(
                str(fp32_path),
                tmp,
                _Reader(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(_WEIGHT_OPS),
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        else:
            quantize_dynamic(
                str(fp32_path),
                tmp,
                op_types_to_quantize=list(_WEIGHT_OPS),
                per_channel=True,
                weight_type=QuantType.QInt8,
            )
        left = {(op, name) for op, name in _weight_nodes(onnx.load(tmp))}
        still_float = [(op, name) for op, name in wanted if (op, name) in left]
        if still_float:
            op, name = still_float[0]
            more = f" (and {len(still_float) - 1} more)" if len(still_float) > 1 else ""
            raise PvqInputError(
                f"int8-{mode}: ONNX Runtime cannot quantize op {op} in layer {_layer(name)} (node {name}){more}"
            )
        os.replace(tmp, out_path)
    except PvqInputError:
        Path(tmp).unlink(missing_ok=True)
        raise
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        msg = " ".join(str(exc).split())[:300]
        raise PvqInputError(
            f"int8-{mode}: ONNX Runtime quantization failed ({type(exc).__name__}: {msg})"
        ) from None
    finally:
        logging.getLogger().setLevel(level)
    return out_path
