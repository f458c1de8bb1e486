"""Error metrics shared by every part of pvq (DESIGN.md conventions)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["snr_db", "mse"]


def snr_db(signal_power: float, noise_power: float) -> float:
    """SNR in dB: ``10 log10(signal_power / noise_power)``.

    ``inf`` when the noise is exactly zero (and the signal is not); ``nan`` when both are zero.
    """
    signal_power = float(signal_power)
    noise_power = float(noise_power)
    if noise_power <= 0.0:
        return math.nan if signal_power <= 0.0 else math.inf
    if signal_power <= 0.0:
        return -math.inf
    return 10.0 * math.log10(signal_power / noise_power)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared difference of two arrays of the same shape, in float64."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape:
        raise ValueError(f"mse: shapes differ: {a64.shape} vs {b64.shape}")
    return float(np.mean((a64 - b64) ** 2)) if a64.size else 0.0
