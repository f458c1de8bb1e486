"""The bit-packed file of an LSQ-quantized model (``pvq finetune``'s ``quantized.safetensors``).

:func:`pvq.training.export_quantized` gives ``{layer: {"int": int32 codes, "scale": ..., "bits": b}}``; stored
as int32 that is 32 bits per weight, more than the FP32 model it compresses. This layout stores each code at
its bit-width. safetensors file, per quantized layer ``L`` (its module name):

- ``L.codes`` uint8: for ``b <= 8`` the unsigned codes ``u = int - qmin`` (``qmin = -2**(b-1)`` on the signed
  grid, 0 on the unsigned LSQ+ grid), in the weight's row-major order, concatenated as a bit stream of ``b``
  bits each (least significant bit first, last byte zero-padded; :func:`pvq.apply._pvq_format.pack_bits`, the
  packing of pvq's ``pvq-packed`` export). For ``b > 8`` (``--ends-bits 9..16``) ``L.codes`` is int16 ``u - 2**15``,
  one per weight (the packer handles up to 8 bits);
- ``L.scale`` float32: 0-d (per tensor) or (out, 1, ...) (per channel), exactly LSQ's scale;
- ``L.offset`` float32 (asymmetric LSQ+ only), same form as the scale;
- ``L.shape`` int64: the weight's shape.

Metadata: ``format = "pvq-lsq-packed"``, ``version = "1"``, ``layers`` = JSON ``{L: {"bits": b,
"asymmetric": bool}}``. A weight is ``int * scale`` (``+ offset`` when asymmetric), as ``export_quantized``
documents. :func:`load_quantized` returns ``export_quantized``'s dict exactly (int32 codes, per-tensor scales
and offsets as Python floats).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pvq.apply._pvq_format import pack_bits, unpack_bits
from pvq.errors import PvqInputError

__all__ = ["FORMAT", "encode_quantized", "decode_quantized", "save_quantized", "load_quantized"]

FORMAT = "pvq-lsq-packed"
_VERSION = "1"

Export = dict[str, dict[str, torch.Tensor | float | int]]


def _qmin(bits: int, asymmetric: bool) -> int:
    return 0 if asymmetric else -(2 ** (bits - 1))


def encode_quantized(export: Export) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of the packed layout (module docstring) for ``export_quantized``'s dict."""
    tensors: dict[str, torch.Tensor] = {}
    layers: dict[str, dict[str, int | bool]] = {}
    for name, ex in export.items():
        bits, asym = int(ex["bits"]), "offset" in ex
        codes = torch.as_tensor(ex["int"]).detach().cpu()
        lo, hi = _qmin(bits, asym), _qmin(bits, asym) + 2**bits - 1
        if codes.numel() and (int(codes.min()) < lo or int(codes.max()) > hi):
            raise ValueError(f"{name}: {bits}-bit codes must lie in [{lo}, {hi}]")
        if bits <= 8:
            u = (codes.reshape(-1).long() - lo).numpy()
            tensors[f"{name}.codes"] = torch.from_numpy(pack_bits(u, bits))
        else:
            # u - 2**15 fits int16 for any grid of up to 16 bits (signed or LSQ+ unsigned)
            tensors[f"{name}.codes"] = (codes.reshape(-1).long() - lo - 2**15).to(torch.int16)
        tensors[f"{name}.scale"] = torch.as_tensor(ex["scale"], dtype=torch.float32).detach().cpu().contiguous()
        if asym:
            tensors[f"{name}.offset"] = torch.as_tensor(ex["offset"], dtype=torch.float32).detach().cpu().contiguous()
        tensors[f"{name}.shape"] = torch.tensor(tuple(codes.shape), dtype=torch.int64)
        layers[name] = {"bits": bits, "asymmetric": asym}
    return tensors, {"format": FORMAT, "version": _VERSION, "layers": json.dumps(layers)}


def decode_quantized(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Export:
    """Inverse of :func:`encode_quantized`; ``ValueError`` naming what is wrong if the layout does not match."""
    if metadata.get("format") != FORMAT or metadata.get("version") != _VERSION:
        raise ValueError(f"not a {FORMAT} v{_VERSION} file (metadata format={metadata.get('format')!r})")
    out: Export = {}
    for name, info in json.loads(metadata["layers"]).items():
        bits, asym = int(info["bits"]), bool(info["asymmetric"])
        try:
            shape = tuple(int(d) for d in tensors[f"{name}.shape"].tolist())
            stored, scale = tensors[f"{name}.codes"], tensors[f"{name}.scale"]
            offset = tensors[f"{name}.offset"] if asym else None
        except KeyError as exc:
            raise ValueError(f"layer {name!r}: tensor {exc} is missing") from None
        n = int(np.prod(shape)) if shape else 1
        if bits <= 8:
            if stored.dtype != torch.uint8 or stored.numel() != (n * bits + 7) // 8:
                raise ValueError(f"layer {name!r}: {stored.numel()} code bytes for {n} weights at {bits} bits")
            u = unpack_bits(stored.numpy(), bits, n)
            codes = torch.from_numpy(u + _qmin(bits, asym)).to(torch.int32).reshape(shape)
        else:
            if stored.dtype != torch.int16 or stored.numel() != n:
                raise ValueError(f"layer {name!r}: {stored.numel()} codes for {n} weights")
            codes = (stored.to(torch.int32) + 2**15 + _qmin(bits, asym)).reshape(shape)
        out[name] = {"int": codes, "scale": float(scale) if scale.dim() == 0 else scale.clone(), "bits": bits}
        if offset is not None:
            out[name]["offset"] = float(offset) if offset.dim() == 0 else offset.clone()
    return out


def save_quantized(path: str | Path, export: Export) -> None:
    """Write ``export`` as a packed safetensors file, atomically."""
    from safetensors.torch import save

    from pvq._io import atomic_write_bytes

    tensors, metadata = encode_quantized(export)
    atomic_write_bytes(Path(path), save(tensors, metadata=metadata))


def load_quantized(path: str | Path) -> Export:
    """Read a file written by :func:`save_quantized` (no pickle); ``PvqInputError`` naming the file if it is not one."""
    from safetensors import safe_open

    p = Path(path)
    try:
        with safe_open(str(p), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a Mapping)
    except (OSError, ValueError, RuntimeError) as exc:
        raise PvqInputError(f"{p}: cannot read as safetensors ({exc})") from None
    except Exception as exc:  # safetensors' SafetensorError derives from Exception only
        raise PvqInputError(f"{p}: not a safetensors file ({exc})") from None
    try:
        return decode_quantized(tensors, metadata)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        raise PvqInputError(f"{p}: {exc}") from None
