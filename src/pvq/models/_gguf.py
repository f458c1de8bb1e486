"""Weight sets from GGUF files (llama.cpp), dequantized to float32 with the ``gguf`` package."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pvq.errors import PvqInputError
from pvq.models._gguf_file import GGUFFile, GGUFTensor, read_gguf
from pvq.models._weightset import WeightInfo, WeightSet, classify_weight

__all__ = ["load_gguf", "open_gguf", "gguf_metadata", "dequantize_tensor", "FOUR_BIT_TYPES"]

# GGML block formats whose stored weights are already at most 4 bits per value (plus block scales)
FOUR_BIT_TYPES = frozenset({"Q4_0", "Q4_1", "Q4_K", "IQ4_NL", "IQ4_XS", "Q3_K", "Q2_K", "IQ3_XXS", "IQ3_S",
                            "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_S", "IQ1_M", "TQ1_0", "TQ2_0", "MXFP4",
                            "NVFP4", "Q1_0"})  # fmt: skip
_FLOAT_TYPES = frozenset({"F32", "F16", "BF16", "F64"})


def gguf_weight_info(name: str, t: GGUFTensor, kinds: tuple[str, ...]) -> WeightInfo | None:
    """The WeightInfo of one GGUF tensor under ``name`` (None if its kind is not wanted); quantized storage is
    noted, and 4-bit storage flagged as 'weights already 4-bit'."""
    shape = t.shape
    if len(shape) < 2 and "other" not in kinds:
        return None
    kind = classify_weight(name, shape)
    if kind not in kinds:
        return None
    qtype = t.type_name
    note = "" if qtype in _FLOAT_TYPES else f"stored as {qtype}"
    if qtype in FOUR_BIT_TYPES:
        note += ": weights already 4-bit"
    return WeightInfo(name, kind, shape, "float32", note)


def open_gguf(path: Path) -> GGUFFile:
    """Parse a GGUF file (header now, tensor data memory-mapped); PvqInputError naming the file if bad."""
    try:
        import gguf  # noqa: F401  (dequantization and type tables)
    except ImportError:
        raise PvqInputError(f"{path}: reading GGUF needs the 'gguf' package (pip install gguf)") from None
    return read_gguf(path)


def gguf_metadata(reader: GGUFFile) -> dict[str, Any]:
    """The GGUF key/value metadata as plain Python values (token lists included)."""
    return dict(reader.fields)


def dequantize_tensor(t: GGUFTensor) -> np.ndarray:
    """One GGUF tensor as float32 in numpy (row-major) shape, e.g. (out_features, in_features)."""
    return t.dequantize()


def load_gguf(path: Path, kinds: tuple[str, ...]) -> WeightSet:
    """Every floating (possibly block-quantized) tensor of a GGUF file, dequantized on access.

    Tensors stored in 4-bit block formats (Q4_0, Q4_1, Q4_K, ...) are flagged in ``WeightInfo.note``
    and in ``WeightSet.notes``: their values are already on a 4-bit grid, so a quantization study
    of them measures re-quantization of an already-quantized model.
    """
    reader = open_gguf(path)
    by_name = {t.name: t for t in reader.tensors}
    infos: dict[str, WeightInfo] = {}
    stored: Counter[str] = Counter()
    for name, t in by_name.items():
        qtype = t.type_name
        if qtype.startswith("I") and qtype[1:].isdigit():
            continue  # integer tensors are not weights
        info = gguf_weight_info(name, t, kinds)
        if info is None:
            continue
        infos[name] = info
        stored[qtype] += 1
    if not infos:
        raise PvqInputError(f"{path}: no {'/'.join(kinds)} weights found")
    notes = [f"GGUF storage types: {', '.join(f'{k} x{v}' for k, v in stored.most_common())}"]
    four = {k: v for k, v in stored.items() if k in FOUR_BIT_TYPES}
    if four:
        names = "/".join(sorted(four))
        notes.insert(0, f"stored as {names}: weights already 4-bit ({sum(four.values())} of {len(infos)} tensors); "
                        "quantization results measure re-quantization")  # fmt: skip

    def loader(name: str) -> torch.Tensor:
        return torch.from_numpy(dequantize_tensor(by_name[name]))

    return WeightSet(infos, loader, str(path), notes)
