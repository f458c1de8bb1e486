"""Weights in the compressed-tensors layout (vllm-project/compressed-tensors 0.13), and its config.

Written here rather than through the package's compressors: those take float weights and quantize them
again with their own rounding (``PackedQuantizationCompressor.compress_weight`` re-quantizes int8 codes
of fewer than 8 bits), while pvq already has the codes; and saving must not need the optional package.
The tensors are the package's, byte for byte; ``tests/test_apply_save.py`` decompresses them with the
package itself. Per module ``M`` (weight ``M.weight``, a conv kernel as its (out, in * kh * kw) matrix):

- ``pack-quantized`` (int/uint, 2/4/8 bits): ``M.weight_packed`` int32 (rows, ceil(cols / (32 // b))),
  code ``j`` of a word in bits ``b*j .. b*j+b-1`` as the unsigned ``code + 2**(b-1)`` (the package's
  ``pack_to_int32``); ``M.weight_scale`` (1,) per tensor, (rows, 1) per channel, (rows, groups) per group;
  ``M.weight_shape`` int64 (2,); for ``uint``: ``M.weight_zero_point`` int32 packed along the output
  dimension (channel/group) or int8 (1,) (tensor), in the package's signed convention ``z - 2**(b-1)``;
- ``float-quantized`` (fp8): ``M.weight`` float8_e4m3fn (the E4M3 level), ``M.weight_scale``;
- ``int-quantized`` (int8, only under sparsity): ``M.weight`` int8, ``M.weight_scale``;
- ``sparse-bitmask``: ``M.compressed`` (kept values, row-major), ``M.bitmask`` uint8 (rows, ceil(cols/8)),
  ``M.shape`` int64 (2,), ``M.row_offsets`` int64 (rows,) (index in ``compressed`` where each row starts);
- ``sparse-24-bitmask``: ``M.compressed`` (rows, cols / 2), ``M.bitmask``, ``M.shape`` int64 (2, 1).
Sparsity stacks over the 8-bit quantized weight (``M.weight`` is replaced by its sparse form), as the
package's ``ModelCompressor`` does. Scales are FP16 (what the bit accounting counts).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from pvq.apply._compressed import CompressedWeight, format_levels
from pvq.apply._pvq_format import fp16_scale, pack_bitmask, unsigned_codes
from pvq.recipes import Quant

__all__ = [
    "split_format",
    "encode_ct",
    "pack_int32",
    "quant_args",
    "quantization_config",
    "SPARSE_PARAMS",
    "QUANT_PARAMS",
]

SPARSE_PARAMS = {
    "sparse-bitmask": ("shape", "compressed", "bitmask", "row_offsets"),
    "sparse-24-bitmask": ("shape", "compressed", "bitmask"),
}
QUANT_PARAMS = {
    "pack-quantized": ("weight_packed", "weight_scale", "weight_zero_point", "weight_g_idx", "weight_shape"),
    "float-quantized": ("weight", "weight_scale", "weight_zero_point", "weight_g_idx"),
    "int-quantized": ("weight", "weight_scale", "weight_zero_point", "weight_g_idx"),
}


def split_format(fmt: str) -> tuple[str, str]:
    """(quantization format, sparsity format) of a storage format: 'int-quantized+sparse-bitmask' ->
    ('int-quantized', 'sparse-bitmask'); 'sparse-bitmask' -> ('', 'sparse-bitmask'); 'pack-quantized' ->
    ('pack-quantized', '')."""
    quant_fmt, _, sparse_fmt = fmt.partition("+")
    return ("", quant_fmt) if quant_fmt.startswith("sparse") else (quant_fmt, sparse_fmt)


def pack_int32(u: torch.Tensor, bits: int) -> torch.Tensor:
    """(rows, n) unsigned codes < 2**bits -> (rows, ceil(n / (32 // bits))) int32, as ``pack_to_int32``."""
    per = 32 // bits
    rows, n = u.shape
    padded = torch.zeros(rows, math.ceil(n / per) * per, dtype=torch.int64)
    padded[:, :n] = u.long()
    shifts = torch.arange(per, dtype=torch.int64) * bits
    words = (padded.reshape(rows, -1, per) << shifts).sum(dim=2)  # (rows, words) in 0..2**32-1
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def _ct_scale(cw: CompressedWeight) -> torch.Tensor:
    q = cw.recipe.quant
    assert q is not None
    s = fp16_scale(cw)
    return s.reshape(1) if q.group_size == 0 else s.contiguous()


def _quant_tensors(cw: CompressedWeight, fmt: str, module: str) -> dict[str, torch.Tensor]:
    q = cw.recipe.quant
    assert q is not None
    rows, cols = cw.rows_cols
    u = unsigned_codes(cw)  # (rows, cols)
    out = {f"{module}.weight_scale": _ct_scale(cw)}
    if fmt == "pack-quantized":
        out[f"{module}.weight_packed"] = pack_int32(u, q.bits)
        out[f"{module}.weight_shape"] = torch.tensor([rows, cols], dtype=torch.int64)
        if q.asymmetric:
            if cw.zero_point is None:
                raise ValueError(f"{cw.name}: a {q.format} weight needs zero points")
            z = cw.zero_point.long()
            if int(z.min()) < 0 or int(z.max()) > 2**q.bits - 1:
                raise ValueError(f"{cw.name}: {q.format} zero points must lie in [0, {2**q.bits - 1}]")
            if q.group_size == 0:
                out[f"{module}.weight_zero_point"] = (z.reshape(1) - 2 ** (q.bits - 1)).to(torch.int8)
            else:  # packed along the output dimension (the package's packed_dim=0)
                out[f"{module}.weight_zero_point"] = pack_int32(z.T, q.bits).T.contiguous()
    elif fmt == "float-quantized":
        levels = format_levels(q.format)
        assert levels is not None
        out[f"{module}.weight"] = levels[u].to(torch.float8_e4m3fn)
    elif fmt == "int-quantized":
        out[f"{module}.weight"] = (u - 2 ** (q.bits - 1)).to(torch.int8)
    else:
        raise ValueError(f"unknown compressed-tensors quantization format {fmt!r}")
    return out


def _sparse_tensors(
    dense: torch.Tensor, mask: torch.Tensor, fmt: str, module: str, name: str
) -> dict[str, torch.Tensor]:
    """``dense`` (rows, cols) of the stored dtype with zeros off ``mask``; -> the sparse tensors of ``fmt``."""
    rows, cols = mask.shape
    kept = dense[mask]  # row-major: each row's kept values in order
    out = {f"{module}.bitmask": pack_bitmask(mask)}
    if fmt == "sparse-24-bitmask":
        if cols % 4 or not bool((mask.reshape(rows, cols // 4, 4).sum(-1) == 2).all()):
            raise ValueError(f"{name}: a 2:4 weight must keep exactly 2 of every 4 inputs")
        out[f"{module}.compressed"] = kept.reshape(rows, cols // 2)
        out[f"{module}.shape"] = torch.tensor([rows, cols], dtype=torch.int64).reshape(-1, 1)
    elif fmt == "sparse-bitmask":
        counts = mask.sum(dim=1)
        out[f"{module}.compressed"] = kept
        out[f"{module}.shape"] = torch.tensor([rows, cols], dtype=torch.int64)
        out[f"{module}.row_offsets"] = torch.cumsum(counts, 0) - counts
    else:
        raise ValueError(f"unknown compressed-tensors sparsity format {fmt!r}")
    return out


def encode_ct(cw: CompressedWeight, fmt: str, module: str) -> dict[str, torch.Tensor]:
    """The compressed-tensors tensors of one weight in ``fmt`` (a :func:`pvq.recipes._bits.storage_format`)."""
    quant_fmt, sparse_fmt = split_format(fmt)
    rows, cols = cw.rows_cols
    mask = cw.mask.reshape(rows, cols).bool() if cw.mask is not None else None
    if not quant_fmt:  # pruned only: FP16 values
        if cw.values is None or mask is None:
            raise ValueError(f"{cw.name}: a pruned-only weight needs values and a mask")
        dense = (cw.values.reshape(rows, cols).half() * mask).to(torch.float16)
        return _sparse_tensors(dense, mask, sparse_fmt, module, cw.name)
    out = _quant_tensors(cw, quant_fmt, module)
    if sparse_fmt:
        assert mask is not None
        dense = out.pop(f"{module}.weight")
        out.update(_sparse_tensors(dense, mask, sparse_fmt, module, cw.name))
    return out


def quant_args(q: Quant) -> dict[str, Any]:
    """compressed-tensors ``QuantizationArgs`` (as JSON) of a weight quantizer."""
    strategy = {0: "tensor", -1: "channel"}.get(q.group_size, "group")
    return {
        "num_bits": q.bits,
        "type": "float" if q.format == "fp8" else "int",
        "symmetric": not q.asymmetric,
        "group_size": q.group_size if q.group_size > 0 else None,
        "strategy": strategy,
        "block_structure": None,
        "dynamic": False,
        "actorder": None,
        "observer": "minmax",
        "observer_kwargs": {},
    }


def quantization_config(
    quantized: Iterable[tuple[str, str, Quant]],
    sparse: Iterable[tuple[str, str]],
    global_sparsity: float,
    ignore: Iterable[str],
    version: str,
) -> dict[str, Any]:
    """The ``quantization_config`` of ``config.json``.

    ``quantized``: (module, quantization format, quantizer); one config group per distinct (format, number
    format, granularity), its ``targets`` the exact module names. ``sparse``: (module, sparsity format);
    compressed-tensors has one sparsity config per model, so the caller stores a model mixing 2:4 with
    other sparsity as ``sparse-bitmask`` throughout. ``global_sparsity``: the fraction of pruned weights
    among the sparse modules'. ``ignore``: modules whose weights are left FP16.
    """
    groups: dict[tuple[str, str, int], list[str]] = {}
    quants: dict[tuple[str, str, int], Quant] = {}
    for module, fmt, q in quantized:
        key = (fmt, q.format, q.group_size)
        groups.setdefault(key, []).append(module)
        quants[key] = q
    schemes: dict[str, Any] = {}
    for i, key in enumerate(sorted(groups)):
        schemes[f"group_{i}"] = {
            "targets": sorted(groups[key]),
            "weights": quant_args(quants[key]),
            "input_activations": None,
            "output_activations": None,
            "format": key[0],
        }
    sparse = list(sparse)
    sparsity: dict[str, Any] = {}
    if sparse:
        fmts = {f for _, f in sparse}
        if len(fmts) != 1:
            raise ValueError(f"compressed-tensors has one sparsity format per model, got {sorted(fmts)}")
        fmt = fmts.pop()
        sparsity = {
            "format": fmt,
            "targets": sorted(m for m, _ in sparse),
            "ignore": [],
            "global_sparsity": global_sparsity,
            "sparsity_structure": "2:4" if fmt == "sparse-24-bitmask" else "unstructured",
        }
    config: dict[str, Any] = {
        "quant_method": "compressed-tensors",
        "version": version,
        "sparsity_config": sparsity,
        "transform_config": {},
    }
    if schemes:
        formats = {key[0] for key in groups}
        config.update(
            {
                "config_groups": schemes,
                "format": formats.pop() if len(formats) == 1 else "mixed-precision",
                "quantization_status": "compressed",
                "kv_cache_scheme": None,
                "global_compression_ratio": None,
                "ignore": sorted(ignore),
            }
        )
    return config
