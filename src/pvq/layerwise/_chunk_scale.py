"""The published per-chunk quantization scale: the paper's 100-candidate grid search on one chunk's weights.

The published Fig. 4 code slices a layer's weights per chunk (every output row over the chunk's inputs)
and runs its per-tensor grid search on that slice: clipping thresholds ``t_i = i (max|w| + 0.5) / 100``,
scale ``t_i / (2^(b-1) - 1)`` in float32, the first candidate of least squared weight error kept. pvq's
default is one MSE-optimal scale per tensor (:func:`pvq.layerwise.layer_scale`); this is the option
``scale='chunk-grid'``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SCALE_MODES", "chunk_grid_scale", "check_scale_mode"]

SCALE_MODES = ("tensor", "chunk-grid")


def check_scale_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`SCALE_MODES`, else ``ValueError`` naming the choices."""
    if mode not in SCALE_MODES:
        raise ValueError(f"scale must be one of {', '.join(SCALE_MODES)}, got {mode!r}")
    return mode


def chunk_grid_scale(weights: np.ndarray, bits: int) -> float:
    """The published grid search's scale for the weights of one chunk (any shape, e.g. (rows, n)).

    Evaluated by :func:`pvq.tensors._reference.published_quant_vectorised`, the published search with
    several candidates per pass (same float32 arithmetic and tie rule as the literal loop).
    """
    import torch

    from pvq.tensors._reference import published_quant_vectorised

    w = torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32).reshape(-1))
    if w.numel() == 0:
        raise ValueError("chunk_grid_scale: empty chunk")
    return float(published_quant_vectorised(w, int(bits)).step)
