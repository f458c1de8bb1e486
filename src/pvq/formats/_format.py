"""A compression format as an explicit, sorted set of representable values at scale 1.

``get_format("int4")`` etc. Integer formats list the integers ``qmin..qmax``; float formats list every
distinct finite value. Quantizing to a format at scale ``s`` rounds to the nearest of ``s * levels()``
(clipping to the ends), which is what the theory (``pvq.theory``) integrates cell by cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from pvq.formats._float import NF4_PUBLISHED, minifloat_values, normalfloat_values

__all__ = [
    "Format",
    "get_format",
    "asymmetric",
    "list_formats",
    "format_for_bits",
    "FORMAT_FAMILIES",
    "MINIFLOAT_LAYOUTS",
]

FORMAT_FAMILIES = ("int", "int-narrow", "uint", "fp", "nf")

# ``--format fp --bits b``: which E/M layout stands for a b-bit float (OCP layouts where one exists).
MINIFLOAT_LAYOUTS: dict[int, tuple[int, int, str]] = {
    2: (1, 0, "none"),  # {-1, 0, 1}
    3: (2, 0, "none"),  # {0, 1, 2, 4} and negatives
    4: (2, 1, "none"),  # OCP FP4 E2M1
    5: (2, 2, "none"),
    6: (3, 2, "none"),  # OCP FP6 E3M2
    7: (3, 3, "none"),
    8: (4, 3, "fn"),  # OCP FP8 E4M3FN
}


@dataclass(frozen=True)
class Format:
    """A b-bit format. ``levels()`` are its representable values at scale 1 (ascending, float64).

    ``kind`` is ``int`` (integers qmin..qmax), ``fp`` (minifloat) or ``nf`` (NormalFloat).
    """

    name: str
    bits: int
    kind: str
    values: tuple[float, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("int", "fp", "nf"):
            raise ValueError(f"Format.kind must be int|fp|nf, got {self.kind!r}")
        v = np.asarray(self.values, dtype=np.float64)
        if v.ndim != 1 or v.size < 2 or not np.all(np.isfinite(v)) or np.any(np.diff(v) <= 0):
            raise ValueError(f"Format {self.name}: values must be >= 2 finite, strictly ascending numbers")
        if v.size > 2**self.bits:
            raise ValueError(f"Format {self.name}: {v.size} values do not fit in {self.bits} bits")

    def levels(self) -> np.ndarray:
        """Representable values at scale 1, ascending, shape (n_levels,), float64."""
        return np.asarray(self.values, dtype=np.float64)

    @property
    def num_levels(self) -> int:
        return len(self.values)

    @property
    def max_level(self) -> float:
        """Largest magnitude on the grid (at scale 1): 2^(b-1) for int (the negative end), 448 for E4M3."""
        return float(max(abs(self.values[0]), abs(self.values[-1])))

    @property
    def qmin(self) -> float:
        return float(self.values[0])

    @property
    def qmax(self) -> float:
        return float(self.values[-1])

    def quantize(self, w: np.ndarray, scale: float) -> np.ndarray:
        """Round every element of ``w`` to the nearest of ``scale * levels()`` (clipped to the ends).

        Ties go to the lower level. Same shape as ``w``, float64.
        """
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        q = self.levels() * scale
        mids = (q[1:] + q[:-1]) / 2.0
        return q[np.searchsorted(mids, np.asarray(w, dtype=np.float64), side="left")]


def _int_format(name: str, bits: int, lo: int, hi: int) -> Format:
    return Format(name, bits, "int", tuple(float(i) for i in range(lo, hi + 1)))


def get_format(name: str) -> Format:
    """A format by name.

    - ``intB`` (B = 1..16): symmetric signed ``{-2^(B-1), ..., 2^(B-1) - 1}`` (DESIGN.md, the paper's code);
    - ``intB_narrow``: ``{-(2^(B-1) - 1), ..., 2^(B-1) - 1}`` (2^B - 1 levels, symmetric about 0);
    - ``uintB``: ``{0, ..., 2^B - 1}`` (asymmetric grids: shift by a zero point, see :func:`pvq.formats.asymmetric`);
    - ``fp8_e4m3`` (OCP E4M3FN, max 448, no inf), ``fp8_e5m2`` (IEEE-like, max 57344), ``fp4_e2m1``
      (OCP, max 6), ``fp6_e3m2``, ``fp6_e2m3``, generic ``fpB_eXmY``, and ``fpB`` (the layout of
      :data:`MINIFLOAT_LAYOUTS`);
    - ``nf4`` (the 16 published QLoRA values), ``nfB`` (NormalFloat-B by the QLoRA construction).
    Raises ``ValueError`` naming the argument for unknown names.
    """
    key = str(name).strip().lower()
    m = re.fullmatch(r"(u?)int(\d+)(_narrow)?", key)
    if m:
        bits = int(m.group(2))
        if not 1 <= bits <= 16 or (m.group(1) and m.group(3)) or (m.group(3) and bits < 2):
            raise ValueError(f"format: unsupported integer format {name!r}")
        if m.group(1):
            return _int_format(key, bits, 0, 2**bits - 1)
        if m.group(3):
            return _int_format(key, bits, -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1)
        return _int_format(key, bits, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    m = re.fullmatch(r"fp(\d+)(?:_e(\d+)m(\d+))?", key)
    if m:
        bits = int(m.group(1))
        if m.group(2) is None:
            if bits not in MINIFLOAT_LAYOUTS:
                raise ValueError(
                    f"format: no default float layout for {bits} bits (have {sorted(MINIFLOAT_LAYOUTS)})"
                )
            e, mm, special = MINIFLOAT_LAYOUTS[bits]
        else:
            e, mm = int(m.group(2)), int(m.group(3))
            if 1 + e + mm != bits or e < 1:
                raise ValueError(f"format: {name!r} needs 1 + E + M = {bits} bits and E >= 1")
            special = {(4, 3): "fn", (5, 2): "ieee"}.get((e, mm), "none") if bits == 8 else "none"
            if bits == 16:
                special = "ieee"
        return Format(key, bits, "fp", tuple(minifloat_values(e, mm, special=special).tolist()))
    m = re.fullmatch(r"nf(\d+)", key)
    if m:
        bits = int(m.group(1))
        if not 2 <= bits <= 8:
            raise ValueError(f"format: NormalFloat needs 2..8 bits, got {name!r}")
        vals = NF4_PUBLISHED if bits == 4 else tuple(normalfloat_values(bits).tolist())
        return Format(key, bits, "nf", tuple(vals))
    raise ValueError(
        f"format: unknown format {name!r}; known: intB, intB_narrow, uintB, fp8_e4m3, fp8_e5m2, fp4_e2m1, fpB, nfB"
    )


def format_for_bits(family: str, bits: int) -> Format:
    """The ``bits``-bit member of a family: ``int`` | ``int-narrow`` | ``uint`` | ``fp`` | ``nf`` (``nf4`` too)."""
    fam = str(family).strip().lower()
    if fam == "nf4":
        fam = "nf"
    if fam == "int":
        return get_format(f"int{bits}")
    if fam == "int-narrow":
        return get_format(f"int{bits}_narrow")
    if fam == "uint":
        return get_format(f"uint{bits}")
    if fam == "fp":
        return get_format(f"fp{bits}")
    if fam == "nf":
        return get_format(f"nf{bits}")
    raise ValueError(f"format family must be one of {', '.join(FORMAT_FAMILIES)}, got {family!r}")


def list_formats() -> list[str]:
    """The named formats (a registry to parametrize tests over)."""
    ints = (
        [f"int{b}" for b in range(2, 9)]
        + [f"int{b}_narrow" for b in range(2, 9)]
        + [f"uint{b}" for b in range(2, 9)]
    )
    return (
        ints
        + ["fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1"]
        + [f"fp{b}" for b in range(2, 9)]
        + [f"nf{b}" for b in range(2, 9)]
    )


def asymmetric(bits: int, zero_point: int) -> Format:
    """Asymmetric b-bit integer grid ``{0 - z, ..., 2^b - 1 - z}`` (unsigned codes with zero point ``z``)."""
    if not 1 <= int(bits) <= 16:
        raise ValueError(f"asymmetric: bits must be in 1..16, got {bits}")
    if not 0 <= int(zero_point) <= 2**bits - 1:
        raise ValueError(f"asymmetric: zero_point must be in 0..{2**bits - 1}, got {zero_point}")
    z = int(zero_point)
    return _int_format(f"uint{bits}_z{z}", int(bits), -z, 2**bits - 1 - z)
