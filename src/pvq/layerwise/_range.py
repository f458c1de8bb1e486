"""Per-tensor quantization scale of a layer: the MSE-optimal scale of its weights (paper §4: "MSE range
search on the layer's weights"), from :func:`pvq.tensors.optimal_scale`."""

from __future__ import annotations

import numpy as np

__all__ = ["layer_scale"]


def layer_scale(weights: np.ndarray, bits: int) -> float:
    """The scale ``s`` minimising ``||w - s * clip(round(w / s))||^2`` on the symmetric signed ``bits``-bit
    grid over all of ``weights`` (any shape). Raises ``ValueError`` for an all-zero tensor.

    Certified optimal on small tensors; on large ones :func:`pvq.tensors.optimal_scale` sweeps only a window
    around its best candidates and can land up to ~0.3 % (in squared error) above the optimum (measured on
    EfficientNet-Lite0 ``blocks.6.0.conv_pw`` and MobileNetV2 ``features.11.conv.0.0`` at 7-8 bits)."""
    from pvq.tensors import SortedTensor, int_levels, optimal_scale

    st = SortedTensor.from_tensor(np.asarray(weights, dtype=np.float32))
    s = optimal_scale(st, int_levels(int(bits))).scale
    if not s > 0:
        raise ValueError("layer_scale: weights are all zero")
    return float(s)
