"""Float grids as explicit value sets: minifloats (FP8 E4M3/E5M2, FP4 E2M1, ...) and NormalFloat (NF4).

All value sets are at scale 1; a format is used as ``scale * levels``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtri

__all__ = ["minifloat_values", "normalfloat_values", "NF4_PUBLISHED"]

# The 16 NF4 values published with QLoRA (Dettmers et al., 2023; bitsandbytes ``NF4`` lookup table).
NF4_PUBLISHED: tuple[float, ...] = (
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
)


def minifloat_values(
    exp_bits: int, man_bits: int, *, bias: int | None = None, special: str = "fn"
) -> np.ndarray:
    """All distinct finite values of a sign + ``exp_bits`` + ``man_bits`` float, ascending (float64).

    ``special`` says which codes are not finite:
      - ``"ieee"``: the top exponent holds inf/NaN (FP8 E5M2, FP16);
      - ``"fn"``: only all-ones exponent *and* all-ones mantissa is NaN (OCP FP8 E4M3FN: max 448);
      - ``"none"``: every code is finite (OCP FP6/FP4: E2M1 max 6).
    Subnormals are included; +0 and -0 are one value (0.0).
    """
    if exp_bits < 1 or man_bits < 0:
        raise ValueError(f"minifloat needs exp_bits >= 1 and man_bits >= 0, got E{exp_bits}M{man_bits}")
    if special not in ("ieee", "fn", "none"):
        raise ValueError(f"special must be ieee|fn|none, got {special!r}")
    if bias is None:
        bias = 2 ** (exp_bits - 1) - 1
    top = 2**exp_bits - 1
    mags: list[float] = []
    for e in range(top + 1):
        if special == "ieee" and e == top:
            continue  # inf / NaN
        for m in range(2**man_bits):
            if special == "fn" and e == top and m == 2**man_bits - 1:
                continue  # NaN
            frac = m / 2**man_bits
            if e == 0:  # subnormal (or zero)
                mags.append(math.ldexp(frac, 1 - bias))
            else:
                mags.append(math.ldexp(1.0 + frac, e - bias))
    pos = np.unique(np.asarray(mags, dtype=np.float64))
    return np.unique(np.concatenate([-pos, pos]))


def normalfloat_values(bits: int) -> np.ndarray:
    """NormalFloat-k values (QLoRA construction), ascending, max |value| = 1.

    Quantiles of N(0, 1): 2^(k-1) positive values at probabilities ``linspace(offset, 1/2, 2^(k-1)+1)``,
    2^(k-1) - 1 negative ones likewise, plus an exact zero; normalised by the largest. ``offset`` is the
    QLoRA choice ``1 - (1/(2(2^k - 1)) + 1/(2^(k+1)))/2`` (0.9677 for k = 4). For k = 4 this reproduces
    :data:`NF4_PUBLISHED` to float32 precision.
    """
    if bits < 2:
        raise ValueError(f"NormalFloat needs at least 2 bits, got {bits}")
    n = 2**bits
    offset = 1.0 - (1.0 / (2 * (n - 1)) + 1.0 / (2 * n)) / 2.0
    pos = ndtri(np.linspace(offset, 0.5, n // 2 + 1)[:-1])
    neg = -ndtri(np.linspace(offset, 0.5, n // 2)[:-1])
    v = np.concatenate([pos, [0.0], neg])
    v = v / np.max(np.abs(v))
    return np.sort(v)
