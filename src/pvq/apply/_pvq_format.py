"""pvq's own layout for weights compressed-tensors cannot hold (``pvq-packed``), and the bit packing both use.

compressed-tensors (0.13) has no format for: nf4 (QLoRA NormalFloat) and fp4 with FP16 group scales
(its ``nvfp4``/``mxfp4`` formats fix the group size at 16/32 with FP8/E8M0 scales); int3/5/6/7 (its
``pack-quantized`` pads each int32 to ``32 // b`` codes, e.g. 6.4 bits per int6 code); groups that do not
divide a row (its dequantizer needs whole groups); and pruning combined with a quantizer other than
int8/fp8 (its sparsity compressors only stack over unpacked 8-bit weights). Those weights are stored
under the weight's state-dict name ``N`` (e.g. ``fc1.weight``) as:

- ``N.pvq_codes`` uint8: the ``b``-bit unsigned code of every kept weight, rows in order, each row's kept
  weights left to right, concatenated as a bit stream (least significant bit first, the last byte padded
  with zeros). Unsigned code: ``c + 2**(b-1)`` for ``intB`` (signed ``c``), ``c`` for ``uintB``, the
  level index for ``fp8`` (E4M3, 253 levels), ``fp4`` (E2M1, 15 levels) and ``nf4`` (16 levels), levels
  ascending as :func:`pvq.apply.format_levels` lists them (b = 8, 4, 4);
- ``N.pvq_scale`` float16 (rows or 1, groups): one scale per group of ``group_size`` inputs of a row;
- ``N.pvq_zero_point`` uint8 (``uint`` formats only): the ``b``-bit zero points (rows, groups), row-major,
  as a bit stream like the codes;
- ``N.pvq_bitmask`` uint8 (rows, ceil(cols / 8)) (pruned only): bit ``j % 8`` of byte ``j // 8`` of row
  ``i`` is 1 where weight (i, j) is kept (numpy ``packbits(..., bitorder="little")``, the bit order of
  compressed-tensors' bitmasks);
- ``N.pvq_shape`` int64: the weight's original shape (a conv kernel (out, in, kh, kw) is stored as the
  (out, in * kh * kw) matrix).

A weight is ``w[i, j] = (level(u[i, j]) - z[i, g]) * s[i, g]`` at kept (i, j), 0 elsewhere, with
``g = j // group_size``. The recipe of each weight is in ``manifest.json``.
"""

from __future__ import annotations

import numpy as np
import torch

from pvq.apply._compressed import CompressedWeight, format_levels

__all__ = [
    "pack_bits",
    "unpack_bits",
    "pack_bitmask",
    "unpack_bitmask",
    "encode_pvq",
    "decode_pvq",
    "why_pvq_packed",
]

_SUFFIXES = ("pvq_codes", "pvq_scale", "pvq_zero_point", "pvq_bitmask", "pvq_shape")


def why_pvq_packed(cw: CompressedWeight) -> str:
    """One line: why compressed-tensors cannot hold this weight (see the module docstring)."""
    q = cw.recipe.quant
    assert q is not None
    _, cols = cw.rows_cols
    if q.format in ("fp4", "nf4"):
        return f"compressed-tensors has no {q.format} format with FP16 group scales"
    if q.group_size > 0 and cols % q.group_size:
        return f"groups of {q.group_size} do not divide the {cols} inputs of a row (compressed-tensors needs whole groups)"
    if cw.recipe.prune is not None and q.format not in ("int8", "fp8"):
        return "compressed-tensors stacks sparsity only over 8-bit (int8/fp8) codes"
    return (
        f"compressed-tensors' pack-quantized would store {q.bits}-bit codes in {32 / (32 // q.bits):.3g} bits"
    )


def pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned integers (< 2**bits, bits <= 8) -> uint8 bit stream, ``bits`` bits each, least significant
    bit first."""
    v = np.ascontiguousarray(values, dtype=np.uint8).reshape(-1, 1)
    planes = np.unpackbits(v, axis=1, count=bits, bitorder="little")  # (n, bits): bit k of each value
    return np.packbits(planes.reshape(-1), bitorder="little")


def unpack_bits(stream: np.ndarray, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: the first ``count`` values (int64)."""
    flat = np.unpackbits(np.asarray(stream, dtype=np.uint8), count=count * bits, bitorder="little")
    return np.packbits(flat.reshape(count, bits), axis=1, bitorder="little")[:, 0].astype(np.int64)


def pack_bitmask(mask: torch.Tensor) -> torch.Tensor:
    """(rows, cols) bool -> (rows, ceil(cols / 8)) uint8, little bit order (compressed-tensors' layout)."""
    return torch.from_numpy(np.packbits(mask.numpy().astype(np.uint8), axis=-1, bitorder="little"))


def unpack_bitmask(packed: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    bits = np.unpackbits(packed.numpy(), axis=-1, count=cols, bitorder="little")
    return torch.from_numpy(bits.astype(bool)).reshape(rows, cols)


def unsigned_codes(cw: CompressedWeight) -> torch.Tensor:
    """(rows, cols) int64 codes shifted to 0..2**b-1; checks the range of ``cw.codes``."""
    q = cw.recipe.quant
    assert q is not None and cw.codes is not None
    c = cw.codes.long()
    levels = format_levels(q.format)
    if levels is not None:
        lo, hi, shift = 0, levels.numel() - 1, 0
    elif q.asymmetric:
        lo, hi, shift = 0, 2**q.bits - 1, 0
    else:
        lo, hi, shift = -(2 ** (q.bits - 1)), 2 ** (q.bits - 1) - 1, 2 ** (q.bits - 1)
    if c.numel() and (int(c.min()) < lo or int(c.max()) > hi):
        raise ValueError(
            f"{cw.name}: {q.format} codes must lie in [{lo}, {hi}], got [{int(c.min())}, {int(c.max())}]"
        )
    return (c + shift).reshape(cw.rows_cols)


def fp16_scale(cw: CompressedWeight) -> torch.Tensor:
    """The scales as float16 (what the file stores); refuses scales FP16 cannot hold."""
    assert cw.scale is not None
    s32 = cw.scale.float()
    s16 = s32.half()
    if not torch.isfinite(s16).all() or bool(((s16 == 0) & (s32 != 0)).any()):
        raise ValueError(f"{cw.name}: a scale is outside the FP16 range ({float(s32.abs().max()):.3g} max)")
    return s16


def encode_pvq(cw: CompressedWeight) -> dict[str, torch.Tensor]:
    """The ``pvq-packed`` tensors of one quantized (and maybe pruned) weight, keyed ``{name}.pvq_*``."""
    q = cw.recipe.quant
    if q is None:
        raise ValueError(f"{cw.name}: pvq-packed stores quantized weights only")
    rows, cols = cw.rows_cols
    u = unsigned_codes(cw)
    mask = cw.mask.reshape(rows, cols) if cw.mask is not None else None
    kept = u[mask] if mask is not None else u.reshape(-1)
    out = {
        f"{cw.name}.pvq_codes": torch.from_numpy(pack_bits(kept.numpy(), q.bits)),
        f"{cw.name}.pvq_scale": fp16_scale(cw).contiguous(),
        f"{cw.name}.pvq_shape": torch.tensor(cw.shape, dtype=torch.int64),
    }
    if q.asymmetric:
        if cw.zero_point is None:
            raise ValueError(f"{cw.name}: a {q.format} weight needs zero points")
        z = cw.zero_point.long()
        if int(z.min()) < 0 or int(z.max()) > 2**q.bits - 1:
            raise ValueError(f"{cw.name}: {q.format} zero points must lie in [0, {2**q.bits - 1}]")
        out[f"{cw.name}.pvq_zero_point"] = torch.from_numpy(pack_bits(z.numpy(), q.bits))
    if mask is not None:
        out[f"{cw.name}.pvq_bitmask"] = pack_bitmask(mask)
    return out


def pvq_keys(name: str) -> tuple[str, ...]:
    return tuple(f"{name}.{s}" for s in _SUFFIXES)


def decode_pvq(
    name: str, recipe_quant_format: str, group_size: int, tensors: dict[str, torch.Tensor]
) -> torch.Tensor:
    """The float32 weight (original shape) from its ``pvq-packed`` tensors (see the module docstring)."""
    shape = tuple(int(d) for d in tensors[f"{name}.pvq_shape"].tolist())
    rows, cols = shape[0], int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    if len(shape) == 1:
        rows = 1
    bits = int("".join(ch for ch in recipe_quant_format if ch.isdigit()))
    mask_key = f"{name}.pvq_bitmask"
    mask = (
        unpack_bitmask(tensors[mask_key], rows, cols)
        if mask_key in tensors
        else torch.ones(rows, cols, dtype=torch.bool)
    )
    codes = torch.from_numpy(unpack_bits(tensors[f"{name}.pvq_codes"].numpy(), bits, int(mask.sum())))
    if mask_key in tensors:
        u = torch.zeros(rows, cols, dtype=torch.int64)
        u[mask] = codes
    else:
        u = codes.reshape(rows, cols)
    levels = format_levels(recipe_quant_format)
    if levels is not None:
        vals = levels[u]
    elif recipe_quant_format.startswith("uint"):
        vals = u.float()
    else:
        vals = (u - 2 ** (bits - 1)).float()
    scale = tensors[f"{name}.pvq_scale"].float()
    groups = scale.shape[1]

    def expand(per_group: torch.Tensor) -> torch.Tensor:
        if group_size <= 0:
            return per_group.expand(rows, cols)
        return per_group.repeat_interleave(group_size, dim=1)[:, :cols].expand(rows, cols)

    zp_key = f"{name}.pvq_zero_point"
    if zp_key in tensors:
        z_rows = scale.shape[0]
        z = torch.from_numpy(unpack_bits(tensors[zp_key].numpy(), bits, z_rows * groups)).reshape(
            z_rows, groups
        )
        vals = vals - expand(z.float())
    w = vals * expand(scale)
    if mask_key in tensors:
        w = w * mask
    return w.reshape(shape)
