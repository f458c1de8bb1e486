"""Per-layer problems: one chunk of a layer's inputs with its Gram matrix and the dense rows over it."""

from __future__ import annotations

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
        """Save as a ``pvq solve`` problem file (``G``, ``w``, and ``scale_<bits>`` entries)."""
        arrays: dict[str, Any] = {"G": self.G, "w": self.W}
        for b, s in self.scales.items():
            arrays[f"scale_{b}"] = np.float64(s)
        np.savez(path, **arrays)


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


def check_problem(G: np.ndarray, W: np.ndarray, what: str = "problem") -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``G`` (n, n) float64 symmetric PSD-ish and ``W`` (rows, n) float64."""
    G = np.asarray(G, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
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
    if not np.allclose(G, G.T, rtol=1e-8, atol=1e-12 * (np.abs(G).max() or 1.0)):
        raise PvqInputError(f"{what}: G must be symmetric")
    G = (G + G.T) / 2.0
    if np.trace(G) <= 0:
        raise PvqInputError(f"{what}: G is zero (no input signal)")
    lam = np.linalg.eigvalsh(G)[0]
    if lam < -1e-8 * np.abs(G).max():
        raise PvqInputError(f"{what}: G is not positive semi-definite (smallest eigenvalue {lam:.3g})")
    return G, W


def load_problem_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Read a ``pvq solve`` file: ``X`` (m, n) or ``G`` (n, n); ``w`` (rows, n) or (n,); optional ``scale``
    (one for all bits) or ``scale_<bits>``. Returns (G, W, scales by key)."""
    path = Path(path)
    if not path.is_file():
        raise PvqInputError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: np.asarray(z[k]) for k in z.files}
    except Exception as exc:  # zipfile / format errors
        raise PvqInputError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None
    if "w" not in data:
        raise PvqInputError(f"{path}: missing array 'w' (rows of weights)")
    if "G" in data:
        G = data["G"]
    elif "X" in data:
        X = np.asarray(data["X"], dtype=np.float64)
        if X.ndim != 2:
            raise PvqInputError(f"{path}: X must be 2-D (samples, n), got shape {X.shape}")
        if not np.isfinite(X).all():
            raise PvqInputError(f"{path}: X must be finite (found NaN or Inf)")
        G = X.T @ X
    else:
        raise PvqInputError(f"{path}: needs 'X' (samples, n) or 'G' (n, n)")
    G, W = check_problem(G, data["w"], what=str(path))
    scales: dict[str, float] = {}
    for k, v in data.items():
        if k == "scale" or k.startswith("scale_"):
            if v.size != 1 or not np.isfinite(v).all() or not float(v.reshape(-1)[0]) > 0:
                raise PvqInputError(f"{path}: '{k}' must be one positive finite number")
            scales[k] = float(v.reshape(-1)[0])
    return G, W, scales
