"""Writers of tiny hostile input files (malformed headers, lying shapes, bombs): a few KB each, never big.

Each ``make_*`` returns the path it wrote. The hostile tests feed them to the loaders and the CLI and
expect one ``pvq: error:`` line and exit code 2.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from _model_files import TinyNet

# --- GGUF, written byte by byte so that every header field can be set to a hostile value ---

_U32, _I32, _F32, _STR, _ARR = 4, 5, 6, 8, 9


def _gstr(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key: str, vtype: int, payload: bytes) -> bytes:
    """One key/value entry: key, value type id, the already-encoded value."""
    return _gstr(key) + struct.pack("<I", vtype) + payload


def gguf_nested_array(depth: int) -> bytes:
    """An array of one array of one array ... ``depth`` levels deep, innermost holding one uint32."""
    inner = struct.pack("<IQ", _U32, 1) + struct.pack("<I", 7)
    return struct.pack("<IQ", _ARR, 1) * (depth - 1) + inner


def write_gguf_raw(
    path: Path,
    kvs: list[bytes],
    tensors: list[tuple[str, tuple[int, ...], int, int]],
    data: bytes,
    align: int = 32,
) -> Path:
    """GGUF v3: ``tensors`` are (name, dims in GGUF order (innermost first), GGML type id, offset);
    ``data`` is padded to ``align`` after the header (the writer's own alignment, not the file's claim)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    for name, dims, type_id, offset in tensors:
        head += _gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        head += struct.pack("<IQ", type_id, offset)
    head += b"\x00" * (-len(head) % align)
    path.write_bytes(head + data)
    return path


def make_gguf(path: Path, alignment: bytes | None = None, dims: tuple[int, ...] = (8, 4)) -> Path:
    """One F32 tensor ``blk.0.attn_q.weight`` of ``dims`` (GGUF order), optionally a general.alignment entry."""
    kvs = [gguf_kv("general.architecture", _STR, _gstr("llama"))]
    if alignment is not None:
        kvs.append(alignment)
    data = np.arange(32, dtype=np.float32).tobytes()
    return write_gguf_raw(path, kvs, [("blk.0.attn_q.weight", dims, 0, 0)], data)


def gguf_alignment(vtype: int, value: object) -> bytes:
    payload = (
        _gstr(str(value))
        if vtype == _STR
        else struct.pack({_U32: "<I", _I32: "<i", _F32: "<f"}[vtype], value)
    )
    return gguf_kv("general.alignment", vtype, payload)


# --- ONNX initializers whose dims lie about their data ---


def make_onnx(path: Path, dims: list[int], n_values: int = 12, external: str | None = None) -> Path:
    """A MatMul graph whose weight initializer claims ``dims`` but holds ``n_values`` float32s
    (or lives in the external file ``external``, which is not written)."""
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("fc_w", TensorProto.FLOAT, [3, 4], np.zeros(12, np.float32).tolist())
    del w.dims[:]
    w.dims.extend(dims)
    w.ClearField("float_data")
    if external is None:
        w.raw_data = np.arange(n_values, dtype=np.float32).tobytes()
    else:
        w.data_location = TensorProto.EXTERNAL
        w.external_data.add(key="location", value=external)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "fc_w"], ["y"])],
        "lying",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=[w],
    )
    onnx.save(helper.make_model(graph), str(path))
    return path


# --- Hugging Face folders with malformed config/index JSON ---


def make_hf_folder(folder: Path, config: object = None, index: object = None) -> Path:
    """A folder with one ``model.safetensors`` (TinyNet), and the given config.json / index JSON if not None."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in TinyNet().state_dict().items() if v.is_floating_point()}
    save_file(state, str(folder / "model.safetensors"))
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    if index is not None:
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


# --- PyTorch state dicts with tensors pvq cannot read as dense weights ---


def make_pt(path: Path, kind: str) -> Path:
    """``stride0``: a (1000, 1000) weight that is a stride-0 view of one stored float (4 MB claimed from 4
    bytes); ``sparse``: a sparse COO weight; ``meta``: a weight with no data (meta device)."""
    state = {k: v for k, v in TinyNet().state_dict().items()}
    if kind == "stride0":
        state["fc.weight"] = torch.ones(1).expand(1000, 1000)
    elif kind == "sparse":
        state["fc.weight"] = state["fc.weight"].to_sparse()
    elif kind == "meta":
        state["fc.weight"] = torch.empty(5, 4, device="meta")
    else:
        raise ValueError(kind)
    torch.save(state, path)
    return path


# --- pvq solve problem files ---


def make_npz(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)
    return path


def good_problem(n: int = 6, rows: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4 * n, n))
    return {"G": X.T @ X, "w": rng.standard_normal((rows, n))}


# --- a PNG whose header claims far more pixels than it holds ---


def make_png_bomb(path: Path, side: int = 100_000) -> Path:
    """A valid-looking PNG header for a ``side`` x ``side`` RGB image with one tiny IDAT chunk (~100 bytes)."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path
