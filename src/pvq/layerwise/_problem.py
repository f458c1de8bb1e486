"""Per-layer problems: one chunk of a layer's inputs with its Gram matrix and the dense rows over it."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pvq.errors import PvqInputError

__all__ = ["ChunkProblem", "chunk_ranges", "load_problem_npz", "check_problem"]


@dataclass(frozen=True)
class ChunkProblem:
    """``G`` (n, n) float64 Gram ``X^T X`` of the chunk's inputs (unfolded, summed over calibration
    samples); ``W`` (rows, n) the dense weights on those inputs (one output channel per row);
    ``scales``: bits -> quantization scale (the layer's per-tensor scale, or the chunk's own with
    ``scale='chunk-grid'`` at capture); ``inputs`` (n,) column indices
    into the layer's unfolded weight ``(out, in/groups * kh * kw)``; ``row_ids`` (rows,) output channels."""

    layer: str
    chunk: int
    G: np.ndarray = field(repr=False)
    W: np.ndarray = field(repr=False)
    scales: Mapping[int, float] = field(default_factory=dict)
    inputs: np.ndarray | None = field(default=None, repr=False)
    row_ids: np.ndarray | None = field(default=None, repr=False)
    samples: int = 0

    @property
    def n(self) -> int:
        return int(self.G.shape[0])

    def to_npz(self, path: str | Path) -> None:
        """Save as a ``pvq solve`` problem file (``G``, ``w``, and ``scale_<bits>`` entries), atomically."""
        import io

        from pvq._io import atomic_write_bytes

        arrays: dict[str, Any] = {"G": self.G, "w": self.W}
        for b, s in self.scales.items():
            arrays[f"scale_{b}"] = np.float64(s)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())

    def file_name(self) -> str:
        """``<layer>.chunk<k>.npz``, the name ``pvq layers --save-problems`` gives this problem."""
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.layer)
        return f"{safe}.chunk{self.chunk}.npz"


def chunk_ranges(n_inputs: int, opt_dim: int | None, kernel_area: int = 1) -> list[tuple[int, int]]:
    """Split ``n_inputs`` unfolded inputs (channel-major, ``kernel_area`` per channel) into chunks.

    ``opt_dim`` None or 0: one chunk (whole rows). For ``kernel_area > 1`` a chunk holds
    ``max(1, round(opt_dim / kernel_area))`` whole input channels (the paper: 4 channels x 3x3 = 36).
    """
    if not opt_dim:
        return [(0, n_inputs)]
    if opt_dim < 1:
        raise PvqInputError(f"--opt-dim: must be >= 1 (or 0 for whole rows), got {opt_dim}")
    step = max(1, round(opt_dim / kernel_area)) * kernel_area if kernel_area > 1 else opt_dim
    return [(a, min(a + step, n_inputs)) for a in range(0, n_inputs, step)]


# Magnitudes a problem may have: SNR is scale-invariant, but w^T G w and the solvers' squared errors must
# neither overflow nor vanish in float64 (1e300 or 1e-320 weights did both); rescaling loses nothing.
_MAG_LO, _MAG_HI = 1e-100, 1e100
# Largest decompressed size of the arrays a problem file may hold (bytes): 4 GiB, e.g. G of n = 23000.
DEFAULT_MAX_NPZ_BYTES = 4 * 2**30


def check_problem(G: np.ndarray, W: np.ndarray, what: str = "problem") -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``G`` (n, n) float64 symmetric positive semi-definite and ``W`` (rows, n) float64.

    Non-zero magnitudes must lie in [1e-100, 1e100] (max |w| and max |G|): outside, float64 overflows or
    underflows in the solvers; SNR is scale-invariant, so a rescaled problem has the same answer."""
    G = _as_float64(G, "G", what)
    W = _as_float64(W, "w", what)
    if W.ndim == 1:
        W = W[None, :]
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] == 0:
        raise PvqInputError(f"{what}: G must be a non-empty square matrix, got shape {G.shape}")
    if W.ndim != 2 or W.shape[1] != G.shape[0] or W.shape[0] == 0:
        raise PvqInputError(
            f"{what}: w must have shape (rows, {G.shape[0]}) or ({G.shape[0]},), got {W.shape}"
        )
    if not (np.isfinite(G).all() and np.isfinite(W).all()):
        raise PvqInputError(f"{what}: G/X and w must be finite (found NaN or Inf)")
    for name, a in (("w", W), ("G", G)):
        top = float(np.abs(a).max())
        if top and not _MAG_LO <= top <= _MAG_HI:
            raise PvqInputError(
                f"{what}: max |{name}| = {top:.3g} is outside [{_MAG_LO:g}, {_MAG_HI:g}]; rescale it "
                "(the SNR does not depend on the scale)"
            )
    if not np.allclose(G, G.T, rtol=1e-8, atol=1e-12 * (np.abs(G).max() or 1.0)):
        raise PvqInputError(f"{what}: G must be symmetric")
    G = (G + G.T) / 2.0
    if not G.any():
        raise PvqInputError(f"{what}: G is zero (no input signal)")
    lam = np.linalg.eigvalsh(G)[0]
    if lam < -1e-8 * np.abs(G).max():
        raise PvqInputError(f"{what}: G is not positive semi-definite (smallest eigenvalue {lam:.3g})")
    if np.trace(G) <= 0:
        raise PvqInputError(f"{what}: G has no positive eigenvalue (no input signal)")
    return G, W


def _as_float64(a: Any, name: str, what: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise PvqInputError(f"{what}: '{name}' must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def load_problem_npz(
    path: str | Path, max_bytes: int = DEFAULT_MAX_NPZ_BYTES
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Read a ``pvq solve`` file: ``X`` (m, n) or ``G`` (n, n); ``w`` (rows, n) or (n,); optional ``scale``
    (one for all bits) or ``scale_<bits>``. Returns (G, W, scales by key).

    Every member's ``.npy`` header is read first (numpy's own header reader, inside the zip): dtypes must be
    numeric, shapes consistent, and the arrays used at most ``max_bytes`` when decompressed, all before
    any array is inflated (a 1 MB file can hold gigabytes of zeros). Other members are never read."""
    path = Path(path)
    if not path.is_file():
        raise PvqInputError(f"{path}: no such file")
    heads = _npz_headers(path)
    if "w" not in heads:
        raise PvqInputError(f"{path}: missing array 'w' (rows of weights)")
    if "G" not in heads and "X" not in heads:
        raise PvqInputError(f"{path}: needs 'X' (samples, n) or 'G' (n, n)")
    used = ["w", "G" if "G" in heads else "X"] + [k for k in heads if k == "scale" or k.startswith("scale_")]
    for k in used:
        shape, dtype = heads[k]
        if dtype.kind not in "biuf":
            raise PvqInputError(f"{path}: '{k}' must hold real numbers, got dtype {dtype}")
    _check_header_shapes(path, {k: heads[k][0] for k in used})
    total = sum(math.prod(heads[k][0]) * heads[k][1].itemsize for k in used)
    if total > max_bytes:
        raise PvqInputError(
            f"{path}: its arrays need {total / 2**30:.3g} GiB decompressed, over the {max_bytes / 2**30:.3g} GiB limit"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: np.asarray(z[k]) for k in used}
    except Exception as exc:  # zipfile / format errors  # noqa: BLE001
        raise PvqInputError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None
    if "G" in data:
        G = data["G"]
    else:
        X = np.asarray(data["X"], dtype=np.float64)
        if not np.isfinite(X).all():
            raise PvqInputError(f"{path}: X must be finite (found NaN or Inf)")
        top = float(np.abs(X).max()) if X.size else 0.0
        if top and not _MAG_LO <= top <= _MAG_HI:
            raise PvqInputError(
                f"{path}: max |X| = {top:.3g} is outside [{_MAG_LO:g}, {_MAG_HI:g}]; rescale it"
            )
        G = X.T @ X
    G, W = check_problem(G, data["w"], what=str(path))
    scales: dict[str, float] = {}
    for k, v in data.items():
        if k == "scale" or k.startswith("scale_"):
            if v.size != 1 or not np.isfinite(v).all() or not _MAG_LO <= float(v.reshape(-1)[0]) <= _MAG_HI:
                raise PvqInputError(
                    f"{path}: '{k}' must be one positive number in [{_MAG_LO:g}, {_MAG_HI:g}]"
                )
            scales[k] = float(v.reshape(-1)[0])
    return G, W, scales


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """name -> (shape, dtype) of every ``.npy`` member, from the headers alone (nothing is decompressed
    beyond the first few hundred bytes of each member)."""
    from numpy.lib import format as npy

    heads: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    version = npy.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = npy.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = npy.read_array_header_2_0(f)
                    else:
                        raise ValueError(f"unsupported .npy version {version}")
                heads[info.filename[: -len(".npy")]] = (tuple(int(d) for d in shape), dtype)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise PvqInputError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None
    return heads


def _check_header_shapes(path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """Shapes from the headers: w (rows, n) or (n,), G (n, n) or X (m, n), scales of one value."""
    w = shapes["w"]
    if len(w) not in (1, 2) or 0 in w:
        raise PvqInputError(f"{path}: w must have shape (rows, n) or (n,), got {w}")
    n = w[-1]
    if "G" in shapes and shapes["G"] != (n, n):
        raise PvqInputError(f"{path}: G must have shape ({n}, {n}) to match w {w}, got {shapes['G']}")
    if "X" in shapes and (len(shapes["X"]) != 2 or shapes["X"][1] != n or shapes["X"][0] == 0):
        raise PvqInputError(f"{path}: X must have shape (samples, {n}) to match w {w}, got {shapes['X']}")
    for k, shape in shapes.items():
        if k.startswith("scale") and math.prod(shape) != 1:
            raise PvqInputError(f"{path}: '{k}' must be one positive number, got shape {shape}")
