"""Per-tensor quantization scale of a layer: the MSE-optimal scale of its weights (paper §2: "a quantization
range estimator minimizing the mean-squared error on weights"), from :func:`pvq.tensors.optimal_scale`."""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["layer_scale"]


def layer_scale(weights: np.ndarray, bits: int) -> float:
    """The scale ``s`` minimising ``||w - s * clip(round(w / s))||^2`` on the symmetric signed ``bits``-bit
    grid over all of ``weights`` (any shape). Raises ``ValueError`` for an all-zero tensor.

    The global optimum, certified by :func:`pvq.tensors.optimal_scale`'s branch and bound; should the search
    stop at its node cap (not seen on the bundled models), the scale is only near-optimal and a
    ``RuntimeWarning`` says so."""
    from pvq.tensors import SortedTensor, int_levels, optimal_scale

    st = SortedTensor.from_tensor(np.asarray(weights, dtype=np.float32))
    res = optimal_scale(st, int_levels(int(bits)))
    if not res.scale > 0:
        raise ValueError("layer_scale: weights are all zero")
    if not res.certified:
        warnings.warn(
            f"layer_scale: the {bits}-bit scale search stopped at its node cap; the scale is near-optimal",
            RuntimeWarning,
            stacklevel=2,
        )
    return float(res.scale)
