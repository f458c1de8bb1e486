"""A fast GGUF (v2/v3) header parser with memory-mapped tensor data.

``gguf.GGUFReader`` builds a numpy view per token of the vocabulary, which takes seconds for a
49k-token model; this parser reads the same header with ``struct`` in well under a second and maps
the tensor data lazily. Dequantization itself is left to the ``gguf`` package.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pvq.errors import PvqInputError

__all__ = ["GGUFTensor", "GGUFFile", "read_gguf"]

_MAGIC = b"GGUF"
# GGUF metadata value types: struct format (little-endian) per scalar type id
_SCALAR = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_NP = {
    0: "<u1",
    1: "<i1",
    2: "<u2",
    3: "<i2",
    4: "<u4",
    5: "<i4",
    6: "<f4",
    7: "?",
    10: "<u8",
    11: "<i8",
    12: "<f8",
}
_STRING, _ARRAY = 8, 9
_MAX_NESTING = 8  # arrays of arrays: real files nest at most 2 deep; deeper is a hostile header
_MAX_ALIGNMENT = 1 << 20  # llama.cpp writes 32; any power of two up to 1 MiB is accepted


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor: ``shape`` in numpy (row-major) order, e.g. (out_features, in_features)."""

    name: str
    shape: tuple[int, ...]
    type_id: int
    data: np.ndarray  # raw bytes (uint8) as stored, memory-mapped

    @property
    def type_name(self) -> str:
        from gguf.constants import GGMLQuantizationType

        try:
            return GGMLQuantizationType(self.type_id).name
        except ValueError:
            return f"type{self.type_id}"

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    def dequantize(self) -> np.ndarray:
        """float32 array of ``shape``: Q4_0/Q4_1/Q8_0 by pvq's vectorised kernels, other block formats
        by the ``gguf`` package."""
        fast = _FAST.get(self.type_id)
        if fast is not None:
            return fast(np.asarray(self.data)).reshape(self.shape)
        from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
        from gguf.quants import dequantize

        qtype = GGMLQuantizationType(self.type_id)
        block, type_size = GGML_QUANT_SIZES[qtype]
        rows = self.data.reshape(-1, self.shape[-1] // block * type_size)
        out = np.asarray(dequantize(rows, qtype), dtype=np.float32).reshape(self.shape)
        return np.require(out, requirements=["C", "W"])  # a writable copy if it is a view of the file


@dataclass(frozen=True)
class GGUFFile:
    path: Path
    version: int
    fields: dict[str, Any]
    tensors: list[GGUFTensor]


class _Cursor:
    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def unpack(self, fmt: str) -> Any:
        try:
            (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        except struct.error:
            raise PvqInputError(f"{self.path}: truncated GGUF header") from None
        self.pos += struct.calcsize(fmt)
        return v

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > len(self.buf) - self.pos:
            raise PvqInputError(f"{self.path}: corrupt GGUF header (string length {n})")
        s = bytes(self.buf[self.pos : self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return s

    def value(self, vtype: int, depth: int = 0) -> Any:
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            if depth >= _MAX_NESTING:
                raise PvqInputError(
                    f"{self.path}: corrupt GGUF header (arrays nested over {_MAX_NESTING} deep)"
                )
            itype, count = self.unpack("<I"), self.unpack("<Q")
            if itype in _NP:
                dt = np.dtype(_NP[itype])
                if count * dt.itemsize > len(self.buf) - self.pos:
                    raise PvqInputError(f"{self.path}: corrupt GGUF header (array of {count})")
                arr = np.frombuffer(self.buf, dtype=dt, count=count, offset=self.pos)
                self.pos += count * dt.itemsize
                return arr.tolist()
            if count > len(self.buf) - self.pos:
                raise PvqInputError(f"{self.path}: corrupt GGUF header (array of {count})")
            return [self.value(itype, depth + 1) for _ in range(count)]
        if vtype not in _SCALAR:
            raise PvqInputError(f"{self.path}: corrupt GGUF header (unknown value type {vtype})")
        return self.unpack(_SCALAR[vtype])


def read_gguf(path: Path) -> GGUFFile:
    """Parse a GGUF file's header; tensor data stay memory-mapped. Bad files raise PvqInputError."""
    try:
        mm = np.memmap(path, dtype=np.uint8, mode="r")
    except FileNotFoundError:
        raise PvqInputError(f"{path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise PvqInputError(f"{path}: cannot read ({exc})") from None
    buf = memoryview(mm)
    if bytes(buf[:4]) != _MAGIC:
        raise PvqInputError(f"{path}: not a GGUF file (bad magic)")
    cur = _Cursor(buf, path)
    cur.pos = 4
    version = cur.unpack("<I")
    if version not in (2, 3):
        raise PvqInputError(f"{path}: unsupported GGUF version {version}")
    n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
    if n_tensors > len(buf) or n_kv > len(buf):
        raise PvqInputError(f"{path}: corrupt GGUF header (counts)")
    fields: dict[str, Any] = {}
    for _ in range(n_kv):
        key = cur.string()
        fields[key] = cur.value(cur.unpack("<I"))
    infos = []
    for _ in range(n_tensors):
        name = cur.string()
        ndim = cur.unpack("<I")
        if ndim > 8:
            raise PvqInputError(f"{path}: corrupt GGUF header (tensor {name!r} has {ndim} dims)")
        dims = [cur.unpack("<Q") for _ in range(ndim)]
        if any(d == 0 for d in dims):
            raise PvqInputError(f"{path}: corrupt GGUF header (tensor {name!r} has a zero dimension {dims})")
        infos.append((name, tuple(reversed(dims)), cur.unpack("<I"), cur.unpack("<Q")))
    align = _alignment(fields.get("general.alignment", 32), path)
    start = (cur.pos + align - 1) // align * align
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    tensors = []
    for name, shape, type_id, offset in infos:
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(type_id)]
        except (ValueError, KeyError):
            raise PvqInputError(f"{path}: tensor {name!r} has unknown GGML type {type_id}") from None
        n = math.prod(shape)
        if shape and shape[-1] % block:
            raise PvqInputError(
                f"{path}: tensor {name!r} row length {shape[-1]} is not a multiple of {block}"
            )
        if offset % align:
            raise PvqInputError(
                f"{path}: corrupt GGUF header (tensor {name!r} offset {offset} not {align}-aligned)"
            )
        nbytes = n // block * type_size  # dims are >= 1 and bounded below by the file size check
        lo = start + offset
        if lo + nbytes > len(mm):
            raise PvqInputError(f"{path}: truncated: tensor {name!r} runs past the end of the file")
        tensors.append(GGUFTensor(name, shape, type_id, mm[lo : lo + nbytes]))
    return GGUFFile(path, version, fields, tensors)


def _alignment(value: Any, path: Path) -> int:
    """``general.alignment``: an integer power of two in 1..2^20 (a string, float, zero or negative value is
    a corrupt header; a negative one used to shift every tensor into the header and read garbage)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 < value <= _MAX_ALIGNMENT
        or value & (value - 1)
    ):
        raise PvqInputError(
            f"{path}: corrupt GGUF header (general.alignment must be a power of two up to {_MAX_ALIGNMENT}, got {value!r})"
        )
    return value


# --- pure dequantization kernels (ggml block formats, 32 weights per block, low nibbles first) ---


def _dequant_q4_0(raw: np.ndarray) -> np.ndarray:
    """Q4_0: per block fp16 scale d, 16 bytes of 4-bit q; w = d * (q - 8)."""
    b = raw.reshape(-1, 18)
    d = b[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    out = np.empty((b.shape[0], 32), np.float32)
    np.bitwise_and(b[:, 2:], 0x0F, out=out[:, :16], casting="unsafe")
    np.right_shift(b[:, 2:], 4, out=out[:, 16:], casting="unsafe")
    out -= 8.0
    out *= d
    return out


def _dequant_q4_1(raw: np.ndarray) -> np.ndarray:
    """Q4_1: per block fp16 scale d and minimum m, 16 bytes of 4-bit q; w = d * q + m."""
    b = raw.reshape(-1, 20)
    dm = b[:, :4].copy().view(np.float16).astype(np.float32)  # (n, 2): d, m
    out = np.empty((b.shape[0], 32), np.float32)
    np.bitwise_and(b[:, 4:], 0x0F, out=out[:, :16], casting="unsafe")
    np.right_shift(b[:, 4:], 4, out=out[:, 16:], casting="unsafe")
    out *= dm[:, :1]
    out += dm[:, 1:2]
    return out


def _dequant_q8_0(raw: np.ndarray) -> np.ndarray:
    """Q8_0: per block fp16 scale d, 32 int8 q; w = d * q."""
    b = raw.reshape(-1, 34)
    d = b[:, :2].copy().view(np.float16).astype(np.float32)
    return b[:, 2:].copy().view(np.int8).astype(np.float32) * d


_FAST = {2: _dequant_q4_0, 3: _dequant_q4_1, 8: _dequant_q8_0}  # GGML type ids
