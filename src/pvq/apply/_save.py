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

``load_compressed(folder)`` decompresses ``model.safetensors`` with the compressed-tensors package's own
compressors (pvq-packed tensors with pvq's reader) and returns the dequantized state dict and manifest.
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
from pvq.apply._ct_format import QUANT_PARAMS, SPARSE_PARAMS, encode_ct, quantization_config
from pvq.apply._pvq_format import decode_pvq, encode_pvq, pvq_keys
from pvq.errors import PvqInputError
from pvq.recipes import Plan, Recipe, parse_recipe, recipe_bits
from pvq.recipes._bits import storage_format

__all__ = ["CompressedResult", "SaveReport", "TensorRecord", "save_compressed", "load_compressed"]

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


# ----------------------------------------------------------------------------------------------- save


def _module_of(name: str) -> str | None:
    return name[: -len(".weight")] if name.endswith(".weight") else None


def _formats(weights: Mapping[str, CompressedWeight]) -> dict[str, str]:
    """Storage format per weight; one sparsity format per model (compressed-tensors has one)."""
    fmts: dict[str, str] = {}
    for name, cw in weights.items():
        fmt = storage_format(cw.recipe, cw.shape)
        if _module_of(name) is None and fmt != "dense":  # compressed-tensors names modules' .weight only
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
    weights: Mapping[str, CompressedWeight], fmts: Mapping[str, str]
) -> tuple[dict[str, torch.Tensor], list[TensorRecord]]:
    tensors: dict[str, torch.Tensor] = {}
    records = []
    for name, cw in weights.items():
        fmt = fmts[name]
        module = _module_of(name)
        note = ""
        if fmt == "dense":
            t = _plain(cw.dequantize()).half()
            out = {name: t}
            if not cw.recipe.is_none:
                note = "stored as FP16 (compressed-tensors compresses a module's .weight only)"
        elif fmt == "pvq-packed":
            out = encode_pvq(cw)
            note = "no compressed-tensors format holds this recipe on this shape; pvq-packed layout"
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
        fmt, mod = fmts[name], _module_of(name)
        if fmt in ("dense", "pvq-packed") or mod is None:
            continue
        quant_fmt, _, sparse_fmt = fmt.partition("+")
        if quant_fmt.startswith("sparse"):
            quant_fmt, sparse_fmt = "", quant_fmt
        if quant_fmt:
            assert cw.recipe.quant is not None
            quantized.append((mod, quant_fmt, cw.recipe.quant))
        if sparse_fmt:
            assert cw.mask is not None
            sparse.append((mod, sparse_fmt))
            k = int(cw.mask.sum())
            kept, pruned = kept + k, pruned + cw.mask.numel() - k
    compressed = {_module_of(n) for n, f in fmts.items() if f not in ("dense",)}
    ignore = [n for n, m in module.named_modules() if isinstance(m, _LAYERS) and n not in compressed]
    qc = quantization_config(quantized, sparse, pruned / max(kept + pruned, 1), ignore, CT_LAYOUT_VERSION)
    if model_config is not None:
        config = dict(model_config)
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
        json.dump(to_jsonable(data), f, indent=2, sort_keys=False)
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
    tensors, records = _compressed_tensors(weights, fmts)
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
            "not_representable_in_compressed_tensors": {
                r.name: f"{r.recipe} on {list(r.shape)}" for r in not_ct
            },
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


# ----------------------------------------------------------------------------------------------- load


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


def _ct_compressor(quant_config: Mapping[str, Any], where: Path) -> Any:
    try:
        from compressed_tensors.compressors import ModelCompressor
    except ImportError as exc:  # the optional dependency
        raise ImportError("load_compressed needs compressed-tensors: pip install 'pvq[apply]'") from exc
    try:
        return ModelCompressor.from_compression_config(dict(quant_config))
    except Exception as exc:  # pydantic validation or an unknown format
        raise PvqInputError(
            f"{where}: quantization_config is not a valid compressed-tensors config ({exc})"
        ) from None


_REQUIRED = {
    "pack-quantized": ("weight_packed", "weight_scale", "weight_shape"),
    "float-quantized": ("weight", "weight_scale"),
    "int-quantized": ("weight", "weight_scale"),
}


def _decompress_ct(
    mc: Any, module: str, fmt: str, tensors: Mapping[str, torch.Tensor], schemes: Mapping[str, Any]
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """One module's weight through the package: sparsity first, then quantization (as ModelCompressor)."""
    quant_fmt, _, sparse_fmt = fmt.partition("+")
    if quant_fmt.startswith("sparse"):
        quant_fmt, sparse_fmt = "", quant_fmt
    names = SPARSE_PARAMS.get(sparse_fmt, ()) + QUANT_PARAMS.get(quant_fmt, ())
    required = SPARSE_PARAMS.get(sparse_fmt, ()) + _REQUIRED.get(quant_fmt, ())
    if sparse_fmt and quant_fmt != "pack-quantized":
        required = tuple(p for p in required if p != "weight")  # the sparse form stands for it
    absent = [f"{module}.{p}" for p in required if f"{module}.{p}" not in tensors]
    if absent:
        raise KeyError(absent[0])
    state = {f"{module}.{p}": tensors[f"{module}.{p}"] for p in names if f"{module}.{p}" in tensors}
    state_keys = list(state)
    if sparse_fmt:
        if mc.sparsity_compressor is None:
            raise PvqInputError(f"{module}: stored as {sparse_fmt} but config.json has no sparsity_config")
        state = dict(mc.sparsity_compressor.decompress_from_state_dict(state))
    if quant_fmt:
        if (
            mc.quantization_compressor is None
            or quant_fmt not in mc.quantization_compressor
            or module not in schemes
        ):
            raise PvqInputError(f"{module}: stored as {quant_fmt} but config.json has no config group for it")
        state = mc.quantization_compressor[quant_fmt].decompress_module_from_state_dict(
            module, state, schemes[module]
        )
    return state[f"{module}.weight"], tuple(state_keys)


def load_compressed(folder: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a folder written by :func:`save_compressed`: (dequantized state dict, float32 for floating
    tensors; manifest). Compressed-tensors weights are decompressed by the ``compressed-tensors`` package,
    ``pvq-packed`` ones by :func:`pvq.apply._pvq_format.decode_pvq`. Safetensors and JSON only."""
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
    mc = _ct_compressor(qc, d / CONFIG_FILE)
    schemes: dict[str, Any] = {}
    if mc is not None and mc.quantization_config is not None:
        for scheme in mc.quantization_config.config_groups.values():
            for target in scheme.targets:
                schemes[target] = scheme
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
                w, keys = tensors[name], (name,)
            elif fmt == "pvq-packed":
                q = recipe.quant
                if q is None:
                    raise PvqInputError(f"{name}: pvq-packed without a quantizer in its recipe")
                keys = tuple(k for k in pvq_keys(name) if k in tensors)
                w = decode_pvq(name, q.format, q.group_size, {k: tensors[k] for k in keys})
            else:
                module = _module_of(name)
                if module is None or mc is None:
                    raise PvqInputError(
                        f"{name}: stored as {fmt} but config.json has no compressed-tensors config"
                    )
                w, keys = _decompress_ct(mc, module, fmt, tensors, schemes)
        except KeyError as exc:
            raise PvqInputError(f"{d / MODEL_FILE}: tensor {exc} of {name} is missing") from None
        except (RuntimeError, ValueError, AssertionError) as exc:
            if isinstance(exc, PvqInputError):
                raise
            raise PvqInputError(f"{d / MODEL_FILE}: {name} cannot be decompressed ({exc})") from None
        if w.numel() != math.prod(shape):
            raise PvqInputError(
                f"{d / MODEL_FILE}: {name} has {w.numel()} values, manifest says shape {list(shape)}"
            )
        out[name] = w.float().reshape(shape)
        used.update(keys)
    for k, v in tensors.items():
        if k not in used:
            out[k] = v.float() if v.is_floating_point() else v
    return out, manifest
