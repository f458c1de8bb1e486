"""Weight sets from files: PyTorch state dicts, safetensors (lazy), Hugging Face folders."""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from pvq.errors import PvqInputError
from pvq.models._weightset import WeightInfo, WeightSet, classify_weight, from_state_dict

__all__ = ["load_torch_file", "load_safetensors", "load_hf_folder", "read_state_dict", "check_stored_tensor"]

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "params")
_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn",
              "F8_E5M2": "float8_e5m2"}  # fmt: skip


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)`` of a state dict (unwrapping {"state_dict": ...} checkpoints).

    A pickle that ``weights_only`` refuses (it holds arbitrary Python objects) is never executed: it is
    reported as a PvqInputError, as is a corrupt file or one that holds no tensors.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        detail = _unpickler_detail(str(exc))
        if detail.startswith("Unsupported global"):
            glob = detail.split(":", 1)[1].split(" was not")[0].strip().removeprefix("GLOBAL ")
            raise PvqInputError(
                f"{path}: refused by torch.load(weights_only=True): the pickle needs the Python object "
                f"'{glob}', not just tensors; re-save it as a state dict or safetensors"
            ) from None
        raise PvqInputError(f"{path}: corrupt or not a PyTorch weights file ({detail})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise PvqInputError(f"{path}: corrupt or not a PyTorch file ({_one_line(exc)})") from None
    for _ in range(3):  # unwrap {"state_dict": {...}} style checkpoints
        if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping):
        raise PvqInputError(f"{path}: holds a {type(obj).__name__}, expected a state dict (name -> tensor)")
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise PvqInputError(f"{path}: no tensors found in the checkpoint")
    for name, t in state.items():
        check_stored_tensor(t, f"{path}: tensor '{name}'")
    return state


def check_stored_tensor(t: torch.Tensor, what: str) -> None:
    """Refuse a loaded tensor that is not plain dense data, before anything reads or copies it.

    ``weights_only`` unpickling rebuilds any (size, stride, offset) view of a storage, so a 2 KB file can
    describe a 10^10-element stride-0 view of one float: copying it would need 40 GB. A tensor must be
    strided (not sparse), hold data (not ``meta``), and address no more elements than its storage holds,
    while claiming no more elements than that storage (stride-0 expansion is refused).
    """
    if t.layout != torch.strided:
        raise PvqInputError(f"{what} is a {str(t.layout).removeprefix('torch.')} tensor; save dense tensors")
    if t.is_meta:
        raise PvqInputError(f"{what} holds no data (a meta tensor); save the materialised weights")
    if t.is_quantized:
        raise PvqInputError(f"{what} is a quantized torch tensor; save its float weights")
    numel = t.numel()
    if numel == 0:
        return
    stored = t.untyped_storage().nbytes() // t.element_size()
    last = t.storage_offset() + sum((n - 1) * st for n, st in zip(t.shape, t.stride(), strict=True))
    if any(st < 0 for st in t.stride()) or last >= stored:
        raise PvqInputError(f"{what} addresses element {last} of a storage of {stored}: corrupt file")
    if numel > stored:
        raise PvqInputError(
            f"{what} claims {numel} elements of shape {tuple(t.shape)} but stores {stored} "
            "(an expanded/stride-0 view); save it with .contiguous()"
        )


def load_torch_file(path: Path, kinds: tuple[str, ...]) -> WeightSet:
    """A ``.pt/.pth/.bin`` state dict, always loaded with ``weights_only=True``."""
    return from_state_dict(read_state_dict(path), source=str(path), kinds=kinds)


def load_safetensors(path: Path | list[Path], kinds: tuple[str, ...], source: str | None = None) -> WeightSet:
    """One or more ``.safetensors`` files, read lazily: headers now, each tensor only when asked for."""
    from safetensors import SafetensorError, safe_open

    paths = path if isinstance(path, list) else [path]
    src = source or str(paths[0])
    infos: dict[str, WeightInfo] = {}
    where: dict[str, Path] = {}
    for p in paths:
        try:
            with safe_open(str(p), framework="pt") as f:
                for name in f.keys():
                    sl = f.get_slice(name)
                    dtype = _ST_DTYPES.get(sl.get_dtype())
                    shape = tuple(int(d) for d in sl.get_shape())
                    if dtype is None or (len(shape) < 2 and "other" not in kinds):
                        continue  # integer tensors (position ids, masks) are not weights
                    kind = classify_weight(name, shape)
                    if kind in kinds:
                        infos[name] = WeightInfo(name, kind, shape, dtype)
                        where[name] = p
        except FileNotFoundError:
            raise PvqInputError(f"{p}: file not found") from None
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise PvqInputError(f"{p}: corrupt or not a safetensors file ({_one_line(exc)})") from None
    if not infos:
        raise PvqInputError(f"{src}: no {'/'.join(kinds)} weights found")

    def loader(name: str) -> torch.Tensor:
        with safe_open(str(where[name]), framework="pt") as f:
            return f.get_tensor(name)

    return WeightSet(infos, loader, src)


def load_hf_folder(folder: Path, kinds: tuple[str, ...]) -> WeightSet:
    """A Hugging Face model folder: (sharded) ``model.safetensors`` or ``pytorch_model.bin``; config.json noted."""
    notes: list[str] = []
    cfg = folder / "config.json"
    if cfg.is_file():
        conf = _read_json_object(cfg, "config")
        archs = conf.get("architectures") or []
        if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
            raise PvqInputError(f"{cfg}: 'architectures' must be a list of class names, got {archs!r:.60}")
        arch = ",".join(archs) or str(conf.get("model_type", "?"))
        notes.append(f"Hugging Face model: {arch}")
    for index_name, single in (("model.safetensors.index.json", "model.safetensors"),
                               ("pytorch_model.bin.index.json", "pytorch_model.bin")):  # fmt: skip
        index = folder / index_name
        if index.is_file():
            shards = _index_shards(index, folder)
            missing = [s for s in shards if not s.is_file()]
            if missing:
                raise PvqInputError(f"{missing[0]}: shard listed in {index.name} not found")
            if single.endswith(".safetensors"):
                ws = load_safetensors(shards, kinds, source=str(folder))
            else:
                state: dict[str, torch.Tensor] = {}
                for s in shards:
                    state.update(read_state_dict(s))
                ws = from_state_dict(state, source=str(folder), kinds=kinds)
            ws.notes.extend(notes)
            return ws
        if (folder / single).is_file():
            if single.endswith(".safetensors"):
                ws = load_safetensors(folder / single, kinds, source=str(folder))
            else:
                ws = from_state_dict(read_state_dict(folder / single), source=str(folder), kinds=kinds)
            ws.notes.extend(notes)
            return ws
    raise PvqInputError(f"{folder}: no model.safetensors or pytorch_model.bin in this folder")


def _read_json_object(path: Path, what: str) -> dict:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise PvqInputError(f"{path}: corrupt JSON ({_one_line(exc)})") from None
    if not isinstance(obj, dict):
        raise PvqInputError(f"{path}: corrupt {what} (expected a JSON object, got a {type(obj).__name__})")
    return obj


def _index_shards(index: Path, folder: Path) -> list[Path]:
    """The shard files a ``*.index.json`` names, in order, each a plain file name inside ``folder``
    (an absolute path or ``..`` would read files outside the model folder: refused, as for ONNX)."""
    weight_map = _read_json_object(index, "index").get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise PvqInputError(f"{index}: corrupt index ('weight_map' must map tensor names to shard files)")
    shards = []
    for name in dict.fromkeys(weight_map.values()):
        rel = Path(name)
        if not name or rel.is_absolute() or ".." in rel.parts:
            raise PvqInputError(f"{index}: shard {name!r} points outside the model folder")
        shards.append(folder / rel)
    return shards


def _unpickler_detail(msg: str) -> str:
    """The useful line of torch's weights-only unpickler message ("Unsupported global: ...")."""
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if "WeightsUnpickler error:" in ln:
            rest = ln.split("WeightsUnpickler error:", 1)[1].strip()
            return (rest or (lines[i + 1] if i + 1 < len(lines) else "")).rstrip(".")[:160]
    return " ".join(lines)[:160] or "unpickling failed"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:160] + "...") if len(text) > 160 else (text or type(exc).__name__)
