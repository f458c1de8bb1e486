"""Writers of tiny model files in every format pvq reads (shared by the models/errors tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


class TinyNet(nn.Module):
    """conv (4,3,3,3) -> linear (5, 4); plus a BatchNorm and an embedding."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(10, 3)
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


def write_onnx(path: Path, w_conv: np.ndarray, w_fc: np.ndarray) -> None:
    """A Conv -> GlobalAveragePool -> Flatten -> MatMul graph whose MatMul weight is stored (in, out)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Conv", ["x", "conv_w"], ["c"]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "fc_w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, w_fc.shape[0]])],
        initializer=[
            numpy_helper.from_array(w_conv, "conv_w"),
            numpy_helper.from_array(w_fc.T.copy(), "fc_w"),
        ],
    )
    onnx.save(helper.make_model(graph), str(path))


def write_gguf(path: Path, tensors: dict[str, tuple[np.ndarray, str]]) -> None:
    """A GGUF file with the given tensors, each stored as the named type (F32, Q8_0, Q4_1, ...)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    for name, (arr, qtype) in tensors.items():
        t = gguf.GGMLQuantizationType[qtype]
        if qtype == "F32":
            writer.add_tensor(name, arr.astype(np.float32))
        else:
            writer.add_tensor(name, gguf.quants.quantize(arr.astype(np.float32), t), raw_dtype=t)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
