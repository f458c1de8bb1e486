"""Export a PyTorch module to one self-contained ONNX file, atomically.

Exporter: torch 2.13's ``torch.onnx.export`` defaults to ``dynamo=True`` (``torch.export`` + onnxscript; it
needs the ``onnxscript`` package and writes weights to a separate ``.onnx.data`` file). pvq uses the
TorchScript exporter (``dynamo=False``): it needs no extra package, writes one file (the artifact whose bytes
are measured), and is a single trace (MobileNetV2: a few seconds vs about a minute for the dynamo path on the
shared 2-core machine). Both run offline. The batch axis (and, for text models, the sequence axis) is dynamic.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pvq.errors import PvqInputError

__all__ = ["OPSET", "export_onnx", "input_names_of"]

OPSET = 17


def input_names_of(example: torch.Tensor | Mapping[str, torch.Tensor]) -> list[str]:
    """The ONNX input names pvq gives ``example``: ``x`` for one tensor, the keys of a dict."""
    return ["x"] if isinstance(example, torch.Tensor) else list(example)


def _layer_of(model: nn.Module, example: torch.Tensor | Mapping[str, torch.Tensor], op: str) -> str:
    """The module path whose forward calls ``op`` (e.g. ``aten::linalg_eigh``), from a TorchScript trace."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if isinstance(example, torch.Tensor):
                traced = torch.jit.trace(model, (example,), check_trace=False, strict=False)
            else:
                traced = torch.jit.trace(
                    model, example_kwarg_inputs=dict(example), check_trace=False, strict=False
                )
            graph = traced.inlined_graph
    except Exception:
        return "?"
    for node in graph.nodes():
        if node.kind() == op:
            scope = node.scopeName().split("/")[-1]
            return scope.replace("__module.", "", 1).removeprefix("__module") or "(top level)"
    return "?"


def export_onnx(
    model: nn.Module,
    example: torch.Tensor | Mapping[str, torch.Tensor],
    path: str | os.PathLike[str],
    *,
    sequence_axis: bool = False,
    output_sequence_axis: bool = False,
) -> Path:
    """Write ``model`` (eval mode) as ONNX to ``path`` (written to a temporary file, renamed into place).

    ``example``: one input tensor (named ``x``) or a dict of named inputs (``model(**example)``); its values
    fix every axis but the batch axis (and axis 1 when ``sequence_axis``). The output is named ``y``; its axis 1 is
    dynamic too when ``output_sequence_axis`` (a causal LM's logits, (B, T, vocab)).
    An operator ONNX cannot express -> PvqInputError naming the operator and the layer calling it.
    """
    path = Path(path)
    names = input_names_of(example)
    # torch.onnx.export: a tuple whose last element is a dict passes that dict as keyword arguments
    args: tuple[Any, ...] = (example,) if isinstance(example, torch.Tensor) else (dict(example),)
    axes = {0: "batch", 1: "sequence"} if sequence_axis else {0: "batch"}
    dynamic = {n: axes for n in names} | {"y": {0: "batch", 1: "sequence"} if output_sequence_axis else {0: "batch"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model.eval(),
                args,
                tmp,
                dynamo=False,
                opset_version=OPSET,
                input_names=names,
                output_names=["y"],
                dynamic_axes=dynamic,
                do_constant_folding=True,
            )
        os.replace(tmp, path)
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        m = re.search(r"operator '([\w:.]+)'", msg)
        if m:
            op = m.group(1)
            layer = _layer_of(model, example, op)
            raise PvqInputError(
                f"export: operator {op} in layer {layer} cannot be exported to ONNX opset {OPSET}"
            ) from None
        raise PvqInputError(f"export: {type(model).__name__} cannot be exported to ONNX ({msg})") from None
    return path
