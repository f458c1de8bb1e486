"""Weight sets from ONNX files: the graph initializers, with the layer kind taken from the consuming node."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pvq.errors import PvqInputError
from pvq.models._weightset import WeightInfo, WeightSet

__all__ = ["load_onnx"]

_KIND_OF_OP = {"Conv": "conv", "ConvTranspose": "conv", "QLinearConv": "conv", "Gemm": "linear",
               "MatMul": "linear", "Gather": "embedding"}  # fmt: skip


def load_onnx(path: Path, kinds: tuple[str, ...]) -> WeightSet:
    """Float initializers of an ONNX model.

    Conv/ConvTranspose weights are conv; Gemm and MatMul weights are linear and are returned as
    (out_features, in_features), transposing MatMul and ``transB=0`` Gemm weights (ONNX stores them
    (in, out)); a Gather'ed table is an embedding.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise PvqInputError(f"{path}: reading ONNX needs the 'onnx' package (pip install onnx)") from None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError... all mean a bad file
        raise PvqInputError(f"{path}: corrupt or not an ONNX file ({type(exc).__name__})") from None
    _load_external_data(onnx, model, path)
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    if not inits and not graph.node:
        raise PvqInputError(f"{path}: empty or not an ONNX model (no graph)")
    kind_of: dict[str, str] = {}
    transpose: set[str] = set()
    for node in graph.node:
        kind = _KIND_OF_OP.get(node.op_type)
        if kind is None:
            continue
        if node.op_type == "Gather":
            w_inputs = node.input[:1]
        elif node.op_type == "MatMul":
            w_inputs = [i for i in node.input if i in inits][:1]
        elif node.op_type == "QLinearConv":
            w_inputs = node.input[3:4]
        else:
            w_inputs = node.input[1:2]
        for name in w_inputs:
            if name in inits and name not in kind_of:
                kind_of[name] = kind
                trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
                if node.op_type == "MatMul" or (node.op_type == "Gemm" and trans_b == 0):
                    transpose.add(name)
    infos: dict[str, WeightInfo] = {}
    for name, t in inits.items():
        if t.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                               onnx.TensorProto.BFLOAT16):  # fmt: skip
            continue
        shape = tuple(int(d) for d in t.dims)
        if not _check_initializer(onnx, t, shape, path):
            continue  # an empty float tensor holds no weights
        kind = kind_of.get(name, "other")
        if kind in ("conv", "linear", "embedding") and len(shape) < 2:
            kind = "other"
        if kind not in kinds or (len(shape) < 2 and "other" not in kinds):
            continue
        note = "transposed from ONNX (in, out) to (out, in)" if name in transpose and len(shape) == 2 else ""
        if note:
            shape = shape[::-1]
        infos[name] = WeightInfo(
            name, kind, shape, onnx.helper.tensor_dtype_to_np_dtype(t.data_type).name, note
        )
    if not infos:
        raise PvqInputError(f"{path}: no {'/'.join(kinds)} weights found")

    def loader(name: str) -> torch.Tensor:
        arr = np.asarray(numpy_helper.to_array(inits[name]), dtype=np.float32)
        if infos[name].note:
            arr = arr.T
        return torch.from_numpy(np.array(arr, dtype=np.float32, order="C"))

    return WeightSet(infos, loader, str(path))


def _load_external_data(onnx, model, path: Path) -> None:  # noqa: ANN001
    """Read the initializers kept in external files next to ``path``: each file must lie inside the model's
    folder (no absolute path, no ``..``) and exist; anything else is a PvqInputError naming the file."""
    from onnx.external_data_helper import uses_external_data

    folder = path.parent
    for t in model.graph.initializer:
        if not uses_external_data(t):
            continue
        location = next((e.value for e in t.external_data if e.key == "location"), "")
        rel = Path(location)
        if not location or rel.is_absolute() or ".." in rel.parts:
            raise PvqInputError(
                f"{path}: initializer {t.name!r} points outside the model folder ({location!r})"
            )
        if not (folder / rel).is_file():
            raise PvqInputError(
                f"{path}: external-data file {location!r} of initializer {t.name!r} is missing"
            )
    try:
        onnx.load_external_data_for_model(model, str(folder))
    except Exception as exc:  # onnx's own path checks and short reads
        raise PvqInputError(f"{path}: cannot read its external data ({type(exc).__name__}: {exc})") from None


_ITEMSIZE = {1: 4, 10: 2, 11: 8, 16: 2}  # TensorProto FLOAT, FLOAT16, DOUBLE, BFLOAT16: bytes per value
_TYPED_FIELD = {1: "float_data", 10: "int32_data", 11: "double_data", 16: "int32_data"}


def _check_initializer(onnx, t, shape: tuple[int, ...], path: Path) -> bool:  # noqa: ANN001
    """Whether float initializer ``t`` holds data: its dims must be >= 0 and match the stored values exactly
    (a file may claim dims 2^20 x 2^20 over 12 values); False for an empty tensor."""
    if any(d < 0 for d in shape):
        raise PvqInputError(f"{path}: initializer {t.name!r} has a negative dimension {list(shape)}")
    count = 1
    for d in shape:
        count *= d
    if count == 0:
        return False
    if t.HasField("raw_data"):
        have, want = len(t.raw_data), count * _ITEMSIZE[t.data_type]
        unit = "bytes"
    else:
        have, want, unit = len(getattr(t, _TYPED_FIELD[t.data_type])), count, "values"
    if have != want:
        raise PvqInputError(
            f"{path}: initializer {t.name!r} claims shape {list(shape)} ({want} {unit}) but holds {have} {unit}"
        )
    return True
