"""Read a folder written by :func:`pvq.apply.save_compressed` back, decompressing through compressed-tensors.

Compressed-tensors weights are decompressed by the ``compressed-tensors`` package's own compressors, never by
pvq's :meth:`CompressedWeight.dequantize`: with 0.13 (what ``pvq[apply]`` installs) through its
``ModelCompressor`` (sparsity first, then quantization, as its in-memory decompression does); with 0.15+
(what transformers 5 needs to load such checkpoints) through its per-format compressors, which no longer
include the sparse formats (a clear error says so). ``pvq-packed`` weights are read by
:func:`pvq.apply._pvq_format.decode_pvq`. Only safetensors and JSON are read (never pickle).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from pvq.apply._ct_format import QUANT_PARAMS, SPARSE_PARAMS, split_format
from pvq.apply._pvq_format import decode_pvq, pvq_keys
from pvq.apply._save import CONFIG_FILE, MANIFEST_FILE, MANIFEST_FORMAT, MODEL_FILE, module_of
from pvq.errors import PvqInputError
from pvq.recipes import parse_recipe

__all__ = ["load_compressed"]

_REQUIRED = {
    "pack-quantized": ("weight_packed", "weight_scale", "weight_shape"),
    "float-quantized": ("weight", "weight_scale"),
    "int-quantized": ("weight", "weight_scale"),
}


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise PvqInputError(f"{path}: missing (not a pvq compressed checkpoint folder?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PvqInputError(f"{path}: not readable JSON ({exc})") from None


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise PvqInputError(f"{path}: missing (not a pvq compressed checkpoint folder?)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise PvqInputError(f"{path}: not a readable safetensors file ({exc})") from None


class _Reader:
    """The compressed-tensors package's decompression of one module's weight, for either API generation."""

    def __init__(self, quant_config: Mapping[str, Any], where: Path) -> None:
        try:
            import compressed_tensors
            from compressed_tensors.compressors import BaseCompressor
            from compressed_tensors.quantization import QuantizationConfig
        except ImportError as exc:  # the optional dependency
            raise ImportError("load_compressed needs compressed-tensors: pip install 'pvq[apply]'") from exc
        self.version = str(getattr(compressed_tensors, "__version__", "?"))
        self._registry = BaseCompressor
        qc = dict(quant_config)
        sparsity = qc.get("sparsity_config") or None
        self.legacy = hasattr(self._load_model_compressor(), "parse_sparsity_config")
        try:
            if self.legacy:  # <= 0.14: one object for sparsity + quantization, built from the config dict
                self.mc = self._load_model_compressor().from_compression_config(qc)
                self.quant = self.mc.quantization_config if self.mc is not None else None
            else:  # >= 0.15: quantization config only; per-format classmethod compressors
                q = {
                    k: v for k, v in qc.items() if k not in ("sparsity_config", "transform_config", "version")
                }
                self.mc = None
                self.quant = QuantizationConfig.model_validate(q) if "config_groups" in q else None
        except Exception as exc:  # pydantic validation or an unknown format
            raise PvqInputError(
                f"{where}: quantization_config is not a valid compressed-tensors config ({exc})"
            ) from None
        self.sparsity = sparsity
        self.schemes: dict[str, Any] = {}
        if self.quant is not None:
            for scheme in self.quant.config_groups.values():
                for target in scheme.targets:
                    self.schemes[target] = scheme

    @staticmethod
    def _load_model_compressor() -> Any:
        from compressed_tensors.compressors import ModelCompressor

        return ModelCompressor

    def weight(
        self, module: str, fmt: str, tensors: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, list[str]]:
        """(decompressed weight, the file keys it used)."""
        quant_fmt, sparse_fmt = split_format(fmt)
        required = SPARSE_PARAMS.get(sparse_fmt, ()) + _REQUIRED.get(quant_fmt, ())
        if sparse_fmt:
            required = tuple(p for p in required if p != "weight")  # the sparse form stands for it
        absent = [f"{module}.{p}" for p in required if f"{module}.{p}" not in tensors]
        if absent:
            raise KeyError(absent[0])
        names = SPARSE_PARAMS.get(sparse_fmt, ()) + QUANT_PARAMS.get(quant_fmt, ())
        state = {f"{module}.{p}": tensors[f"{module}.{p}"] for p in names if f"{module}.{p}" in tensors}
        keys = list(state)
        if quant_fmt and module not in self.schemes:
            raise PvqInputError(f"{module}: stored as {quant_fmt} but config.json has no config group for it")
        if sparse_fmt:
            if not self.legacy:
                raise PvqInputError(
                    f"{module}: {sparse_fmt} needs compressed-tensors < 0.15 (installed {self.version} dropped "
                    "the sparse compressors): pip install 'pvq[apply]'"
                )
            if self.mc is None or self.mc.sparsity_compressor is None:
                raise PvqInputError(
                    f"{module}: stored as {sparse_fmt} but config.json has no sparsity_config"
                )
            state = dict(self.mc.sparsity_compressor.decompress_from_state_dict(state))
        if quant_fmt:
            scheme = self.schemes[module]
            if self.legacy:
                compressor = (self.mc.quantization_compressor or {}).get(quant_fmt)
                if compressor is None:
                    raise PvqInputError(
                        f"{module}: stored as {quant_fmt}, a format config.json does not list"
                    )
                state = compressor.decompress_module_from_state_dict(module, state, scheme)
            else:
                local = {k.removeprefix(f"{module}."): v for k, v in state.items()}
                local = self._registry.get_value_from_registry(quant_fmt).decompress(local, scheme)
                state = {f"{module}.{k}": v for k, v in local.items()}
        return state[f"{module}.weight"], keys


def load_compressed(folder: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a folder written by :func:`pvq.apply.save_compressed`.

    Returns (state dict: every tensor of ``model.safetensors`` with each compressed weight decompressed to
    its original shape, floating tensors as float32; the manifest). Raises :class:`PvqInputError` naming
    the file for a missing, unreadable or inconsistent folder.
    """
    d = Path(folder)
    if not d.is_dir():
        raise PvqInputError(f"{d}: no such checkpoint folder")
    manifest = _read_json(d / MANIFEST_FILE)
    config = _read_json(d / CONFIG_FILE)
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != MANIFEST_FORMAT
        or not isinstance(manifest.get("tensors"), list)
    ):
        raise PvqInputError(f"{d / MANIFEST_FILE}: not a {MANIFEST_FORMAT} manifest")
    qc = config.get("quantization_config") if isinstance(config, dict) else None
    if not isinstance(qc, dict):
        raise PvqInputError(f"{d / CONFIG_FILE}: no quantization_config")
    tensors = _read_safetensors(d / MODEL_FILE)
    reader = _Reader(qc, d / CONFIG_FILE)
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for rec in manifest["tensors"]:
        try:
            name, fmt, shape = rec["name"], rec["format"], tuple(int(x) for x in rec["shape"])
            recipe = parse_recipe(rec["recipe"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PvqInputError(f"{d / MANIFEST_FILE}: malformed tensor entry ({exc})") from None
        try:
            if fmt == "dense":
                w, keys = tensors[name], [name]
            elif fmt == "pvq-packed":
                q = recipe.quant
                if q is None:
                    raise PvqInputError(f"{d / MANIFEST_FILE}: {name} is pvq-packed without a quantizer")
                keys = [k for k in pvq_keys(name) if k in tensors]
                w = decode_pvq(name, q.format, q.group_size, {k: tensors[k] for k in keys})
            else:
                module = module_of(name)
                if module is None:
                    raise PvqInputError(f"{d / MANIFEST_FILE}: {name} is {fmt} but not a module's .weight")
                w, keys = reader.weight(module, fmt, tensors)
        except KeyError as exc:
            raise PvqInputError(f"{d / MODEL_FILE}: tensor {exc} of {name} is missing") from None
        except PvqInputError:
            raise
        except (RuntimeError, ValueError, IndexError, AssertionError) as exc:
            raise PvqInputError(f"{d / MODEL_FILE}: {name} cannot be decompressed ({exc})") from None
        if w.numel() != math.prod(shape):
            raise PvqInputError(
                f"{d / MODEL_FILE}: {name} has {w.numel()} values, the manifest says {list(shape)}"
            )
        out[name] = w.float().reshape(shape)
        used.update(keys)
    for k, v in tensors.items():
        if k not in used:
            out[k] = v.float() if v.is_floating_point() else v
    return out, manifest
