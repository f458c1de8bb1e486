"""Save a compressed model as a checkpoint folder, atomically; read it back through compressed-tensors.

``save_compressed(result, out_dir)`` writes, into a temporary sibling folder renamed into place at the end:

- ``model.safetensors``: the compressed weights in the compressed-tensors layout (:mod:`._ct_format`)
  where it has one, pvq's own ``pvq-packed`` layout (:mod:`._pvq_format`) where it has none, and every
  other tensor (biases, norms, embeddings left alone) as FP16 (integer buffers as they are);
- ``config.json``: ``quantization_config`` (``quant_method: compressed-tensors``, config groups, sparsity
  config) merged into the model's Hugging Face config when given, otherwise in a config of its own;
- ``model.dequantized.safetensors``: ``result.module.state_dict()``, which the original architecture loads
  with no missing or unexpected keys;
- ``manifest.json``: per tensor its recipe, storage format, real bits per weight and bytes on disk vs FP16;
  totals, seconds, versions, and what compressed-tensors cannot represent.

:func:`pvq.apply.load_compressed` reads the folder back through the compressed-tensors package.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

import pvq
from pvq._io import to_jsonable
from pvq.apply._compressed import CompressedWeight
from pvq.apply._ct_format import encode_ct, quantization_config, split_format
from pvq.apply._pvq_format import encode_pvq, why_pvq_packed
from pvq.errors import PvqInputError
from pvq.recipes import Plan, Recipe, parse_recipe, recipe_bits
from pvq.recipes._bits import storage_format

__all__ = ["CompressedResult", "SaveReport", "TensorRecord", "save_compressed"]

MODEL_FILE = "model.safetensors"
DEQUANTIZED_FILE = "model.dequantized.safetensors"
CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "pvq-compressed/1"
# The compressed-tensors release whose layout _ct_format writes and whose compressors read it back
# (0.14 needs transformers < 5; later releases dropped the sparse compressors).
CT_LAYOUT_VERSION = "0.13.0"
_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)


class CompressedResult(Protocol):
    """What :func:`pvq.apply.apply` returns, as far as saving needs it."""

    module: nn.Module
    weights: Mapping[str, CompressedWeight]
    rows: Any
    recipe_or_plan: Any
    seconds: float


@dataclass(frozen=True)
class TensorRecord:
    """One compressed weight as stored: ``bytes`` on disk in ``model.safetensors`` vs ``fp16_bytes``."""

    name: str
    shape: tuple[int, ...]
    recipe: str
    format: str
    compressed_tensors: bool
    bytes: int
    fp16_bytes: int
    bits: dict[str, float]
    note: str = ""

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "recipe": self.recipe,
            "format": self.format,
            "compressed_tensors": self.compressed_tensors,
            "bytes": self.bytes,
            "fp16_bytes": self.fp16_bytes,
            "measured_bits_per_weight": 8 * self.bytes / self.numel,
            **self.bits,
            **({"note": self.note} if self.note else {}),
        }


@dataclass(frozen=True)
class SaveReport:
    """What :func:`save_compressed` wrote. Bits per weight are numel-weighted over the compressed weights."""

    out_dir: Path
    tensors: tuple[TensorRecord, ...]
    file_bytes: Mapping[str, int] = field(default_factory=dict)

    @property
    def compressed_bytes(self) -> int:
        return sum(t.bytes for t in self.tensors)

    @property
    def fp16_bytes(self) -> int:
        return sum(t.fp16_bytes for t in self.tensors)

    @property
    def numel(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def bits_per_weight(self) -> float:
        """The accounting (:func:`pvq.recipes.recipe_bits`), weighted by numel."""
        n = self.numel
        return sum(t.bits["bits_per_weight"] * t.numel for t in self.tensors) / n if n else 0.0

    @property
    def measured_bits_per_weight(self) -> float:
        n = self.numel
        return 8 * self.compressed_bytes / n if n else 0.0

    @property
    def not_compressed_tensors(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tensors if not t.compressed_tensors and t.format != "dense")

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "weights": len(self.tensors),
            "compressed_bytes": self.compressed_bytes,
            "fp16_bytes": self.fp16_bytes,
            "bits_per_weight": self.bits_per_weight,
            "measured_bits_per_weight": self.measured_bits_per_weight,
            "file_bytes": dict(self.file_bytes),
            "not_compressed_tensors": list(self.not_compressed_tensors),
        }


def module_of(name: str) -> str | None:
    return name[: -len(".weight")] if name.endswith(".weight") else None


def _formats(weights: Mapping[str, CompressedWeight]) -> dict[str, str]:
    """Storage format per weight; one sparsity format per model (compressed-tensors has one)."""
    fmts: dict[str, str] = {}
    for name, cw in weights.items():
        fmt = storage_format(cw.recipe, cw.shape)
        if module_of(name) is None and fmt != "dense":  # compressed-tensors names modules' .weight only
            fmt = "pvq-packed" if cw.recipe.quant is not None else "dense"
        fmts[name] = fmt
    sparse = {f.rpartition("+")[2] for f in fmts.values() if "sparse" in f}
    if len(sparse) > 1:  # mixed 2:4 and other sparsity: sparse-bitmask holds any mask
        fmts = {n: f.replace("sparse-24-bitmask", "sparse-bitmask") for n, f in fmts.items()}
    return fmts


def _fp16(t: torch.Tensor) -> tuple[torch.Tensor, str]:
    """A non-compressed tensor as stored: floating -> FP16 unless FP16 cannot hold it."""
    if not t.is_floating_point() or t.dtype == torch.float16:
        return t, ""
    h = t.half()
    if torch.isfinite(t).all() and not torch.isfinite(h).all():
        return t, f"kept as {str(t.dtype).removeprefix('torch.')}: values beyond the FP16 range"
    return h, ""


def _plain(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def _compressed_tensors(
    weights: Mapping[str, CompressedWeight], fmts: Mapping[str, str], state: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[TensorRecord]]:
    tensors: dict[str, torch.Tensor] = {}
    records = []
    for name, cw in weights.items():
        fmt = fmts[name]
        module = module_of(name)
        note = ""
        if fmt == "dense":
            t = _plain(state[name]).half()  # the module's weight: a "none" recipe carries no values
            out = {name: t}
            if not cw.recipe.is_none:
                note = "stored as FP16 (compressed-tensors compresses a module's .weight only)"
        elif fmt == "pvq-packed":
            out = encode_pvq(cw)
            note = why_pvq_packed(cw)
        else:
            assert module is not None
            out = encode_ct(cw, fmt, module)
        tensors.update({k: _plain(v) for k, v in out.items()})
        numel = math.prod(cw.shape)
        records.append(
            TensorRecord(
                name=name,
                shape=tuple(int(d) for d in cw.shape),
                recipe=str(cw.recipe),
                format=fmt,
                compressed_tensors=fmt not in ("pvq-packed",),
                bytes=sum(v.numel() * v.element_size() for v in out.values()),
                fp16_bytes=2 * numel,
                bits=recipe_bits(cw.recipe, cw.shape).to_json(),
                note=note,
            )
        )
    return tensors, records


def _recipe_json(recipe_or_plan: Any) -> Any:
    if isinstance(recipe_or_plan, Plan):
        return recipe_or_plan.to_json()
    if isinstance(recipe_or_plan, (Recipe, str)):
        return str(parse_recipe(recipe_or_plan))
    return str(recipe_or_plan)


def _config(
    module: nn.Module,
    weights: Mapping[str, CompressedWeight],
    fmts: Mapping[str, str],
    model_config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    quantized, sparse = [], []
    pruned = kept = 0
    for name, cw in weights.items():
        fmt, mod = fmts[name], module_of(name)
        if fmt in ("dense", "pvq-packed") or mod is None:
            continue
        quant_fmt, sparse_fmt = split_format(fmt)
        if quant_fmt:
            assert cw.recipe.quant is not None
            quantized.append((mod, quant_fmt, cw.recipe.quant))
        if sparse_fmt:
            assert cw.mask is not None
            sparse.append((mod, sparse_fmt))
            k = int(cw.mask.sum())
            kept, pruned = kept + k, pruned + cw.mask.numel() - k
    compressed = {module_of(n) for n, f in fmts.items() if f not in ("dense",)}
    ignore = [n for n, m in module.named_modules() if isinstance(m, _LAYERS) and n not in compressed]
    qc = quantization_config(quantized, sparse, pruned / max(kept + pruned, 1), ignore, CT_LAYOUT_VERSION)
    if model_config is not None:
        to_dict = getattr(model_config, "to_dict", None)  # a transformers PretrainedConfig
        config = dict(to_dict() if callable(to_dict) else model_config)
    else:
        config = {
            "pvq": "compressed model without a Hugging Face config; quantization_config as compressed-tensors defines it"
        }
    config["quantization_config"] = qc
    return config


def _check_out(out: Path, force: bool, source_path: str | os.PathLike[str] | None) -> None:
    if source_path is not None:
        src = Path(source_path).resolve()
        o = out.resolve()
        if o == src or src in o.parents or o in src.parents:
            raise PvqInputError(
                f"--out {out}: must not be, contain or lie inside the model source {source_path}"
            )
    if out.exists() or out.is_symlink():
        if not force:
            raise PvqInputError(f"--out {out}: already exists; pass --force to replace it")
        if not out.is_dir() or out.is_symlink():
            raise PvqInputError(f"--out {out}: exists and is not a folder; refusing to replace it")


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(to_jsonable(data), f, indent=2, sort_keys=False, default=str)  # e.g. a torch.dtype
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _save_safetensors(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    save_file(dict(tensors), str(path), metadata={"format": "pt"})
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def save_compressed(
    result: CompressedResult,
    out_dir: str | os.PathLike[str],
    *,
    force: bool = False,
    model_config: Mapping[str, Any] | None = None,
    source_path: str | os.PathLike[str] | None = None,
) -> SaveReport:
    """Write the checkpoint folder ``out_dir`` (see the module docstring); returns what was written.

    ``out_dir`` must not exist unless ``force`` (then it is replaced; a failure leaves it as it was) and must
    not be, contain or lie inside ``source_path``. ``model_config``: the model's Hugging Face config
    (``config.json`` as a dict) to merge ``quantization_config`` into.
    """
    out = Path(out_dir)
    _check_out(out, force, source_path)
    weights = dict(result.weights)
    state = result.module.state_dict()
    missing = sorted(n for n in weights if n not in state)
    if missing:
        raise ValueError(f"compressed weights not in the module's state dict: {', '.join(missing[:5])}")
    fmts = _formats(weights)
    tensors, records = _compressed_tensors(weights, fmts, state)
    clash = sorted(k for k in tensors if k in state and k not in weights)
    if clash:
        raise ValueError(
            f"compressed tensors would overwrite other state-dict entries: {', '.join(clash[:5])}"
        )
    notes: dict[str, str] = {}
    for name, value in state.items():
        if name in weights:
            continue
        stored, note = _fp16(_plain(value))
        tensors[name] = stored
        if note:
            notes[name] = note
    config = _config(result.module, weights, fmts, model_config)
    not_ct = [r for r in records if not r.compressed_tensors]

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _save_safetensors(tmp / MODEL_FILE, tensors)
        _save_safetensors(tmp / DEQUANTIZED_FILE, {k: _plain(v) for k, v in state.items()})
        _write_json(tmp / CONFIG_FILE, config)
        file_bytes = {p.name: p.stat().st_size for p in (tmp / MODEL_FILE, tmp / DEQUANTIZED_FILE)}
        report = SaveReport(out, tuple(records), file_bytes)
        manifest = {
            "format": MANIFEST_FORMAT,
            "pvq_version": pvq.__version__,
            "compressed_tensors_layout": CT_LAYOUT_VERSION,
            "recipe_or_plan": _recipe_json(result.recipe_or_plan),
            "seconds": float(result.seconds),
            "files": {
                MODEL_FILE: "compressed weights (compressed-tensors layout; pvq-packed where noted) + FP16 rest",
                DEQUANTIZED_FILE: "dequantized state dict of the original architecture",
                CONFIG_FILE: "quantization_config (compressed-tensors)",
            },
            "compressed_tensors_complete": not not_ct,
            "not_representable_in_compressed_tensors": {r.name: f"{r.recipe}: {r.note}" for r in not_ct},
            "stored_as_other_dtype": notes,
            "totals": report.to_json() | {"out_dir": str(out)},
            "tensors": [r.to_json() for r in records],
        }
        _write_json(tmp / MANIFEST_FILE, manifest)
        os.chmod(tmp, 0o777 & ~_umask())
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace_dir(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` to ``out``; an existing ``out`` is moved aside first, deleted after."""
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(old)
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)  # put the previous checkpoint back
        raise
    shutil.rmtree(old, ignore_errors=True)
