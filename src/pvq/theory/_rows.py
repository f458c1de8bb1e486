"""Theory sweep: SNR of quantization vs pruning at equal compression, one row per bit-width."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pvq.formats import (
    FORMAT_FAMILIES,
    Format,
    format_for_bits,
    get_format,
    keep_ratio_with_overhead,
    sparsity_for_bits,
)
from pvq.metrics import snr_db
from pvq.theory._distributions import DISTRIBUTIONS, Distribution, get_distribution
from pvq.theory._errors import expected_prune_mse, optimal_quant_error, prune_threshold

__all__ = ["TheoryConfig", "theory_rows", "run_theory"]


@dataclass(frozen=True)
class TheoryConfig:
    """What ``pvq theory`` computes. ``R`` xor ``kurtosis`` only for ``student-t``.

    ``format``: a family (int | int-narrow | uint | fp | nf | nf4) whose ``bits``-bit member is used, or
    one format's name (``fp8_e5m2``, ``int4_narrow``, ...; then every bit-width must be its own).
    ``mask_overhead``: charge pruning 1 mask bit per weight (keep ratio (b - 1)/16 instead of b/16).
    """

    dist: str = "gaussian"
    nu: float | None = None
    R: float | None = None
    kurtosis: float | None = None
    bits: tuple[int, ...] = field(default=(2, 3, 4, 5, 6, 7, 8))
    format: str = "int"
    mask_overhead: bool = False

    def __post_init__(self) -> None:
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(f"--dist must be one of {', '.join(DISTRIBUTIONS)}, got {self.dist!r}")
        fam = self.format.lower()
        if fam not in (*FORMAT_FAMILIES, "nf4"):
            try:
                named = get_format(fam)
            except ValueError:
                raise ValueError(
                    "--format must be a family (int, int-narrow, uint, fp, nf, nf4) or a format name "
                    f"(fp8_e5m2, int4_narrow, ...), got {self.format!r}"
                ) from None
            if any(int(b) != named.bits for b in self.bits):
                raise ValueError(
                    f"--format {named.name} is a {named.bits}-bit format: use --bits {named.bits}"
                )
        if self.dist != "student-t":
            for arg, v in (("--nu", self.nu), ("--range", self.R), ("--kurtosis", self.kurtosis)):
                if v is not None:
                    raise ValueError(f"{arg} applies to --dist student-t only")
        if self.R is not None and self.kurtosis is not None:
            raise ValueError("--range and --kurtosis are exclusive: give one")
        for arg, v in (("--nu", self.nu), ("--range", self.R), ("--kurtosis", self.kurtosis)):
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{arg} must be a positive finite number, got {v}")
        if not self.bits:
            raise ValueError("--bits: no bit-widths given")
        for b in self.bits:
            if not 2 <= int(b) <= 8:
                raise ValueError(f"--bits: bit-widths must be in 2..8, got {b}")
            if self.mask_overhead and b < 2:
                raise ValueError("--bits: with mask overhead at least 2 bits are needed")
        if fam == "nf4" and any(b != 4 for b in self.bits):
            raise ValueError(
                "--format nf4 is a 4-bit format: use --bits 4 (or --format nf for NormalFloat-k)"
            )

    def distribution(self) -> Distribution:
        try:
            return get_distribution(self.dist, nu=self.nu, R=self.R, kurtosis=self.kurtosis)
        except ValueError as exc:
            arg = "--kurtosis" if self.kurtosis is not None else "--range" if self.R is not None else "--dist"
            raise ValueError(f"{arg}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["bits"] = list(self.bits)
        return d


def theory_rows(
    dist: Distribution,
    bits: Iterable[int] = range(2, 9),
    fmt: str | Format = "int",
    *,
    mask_overhead: bool = False,
) -> list[dict[str, Any]]:
    """One row per bit-width: quantization at the MSE-optimal scale vs magnitude pruning at equal compression.

    Keys: ``bits``, ``sparsity``, ``quant_snr_db``, ``prune_snr_db`` (DESIGN.md) plus ``format``, ``scale``,
    ``clip`` (largest |level| x scale), ``quant_mse``, ``rounding_mse``, ``clipping_mse``, ``prune_mse``,
    ``prune_threshold``, ``winner`` (quant|prune), ``kurtosis``, ``dist``, ``params``. MSEs in units of w².
    """
    signal = dist.variance()
    kurt = dist.kurtosis()
    rows = []
    for b in bits:
        f = _member(fmt, int(b))
        q = optimal_quant_error(dist, f)
        sparsity = 1.0 - keep_ratio_with_overhead(b) if mask_overhead else sparsity_for_bits(b)
        p_mse = expected_prune_mse(dist, sparsity)
        q_snr, p_snr = snr_db(signal, q.mse), snr_db(signal, p_mse)
        rows.append(
            {
                "bits": int(b),
                "sparsity": sparsity,
                "quant_snr_db": q_snr,
                "prune_snr_db": p_snr,
                "format": f.name,
                "scale": q.scale,
                "clip": q.scale * f.max_level,
                "quant_mse": q.mse,
                "rounding_mse": q.rounding,
                "clipping_mse": q.clipping,
                "prune_mse": p_mse,
                "prune_threshold": prune_threshold(dist, sparsity),
                "winner": "quant" if q_snr >= p_snr else "prune",
                "kurtosis": kurt,
                "dist": dist.name,
                "params": dist.params(),
            }
        )
    return rows


def _member(fmt: str | Format, bits: int) -> Format:
    """The ``bits``-bit member of a family, or the named/given format itself."""
    if isinstance(fmt, Format):
        return fmt
    if fmt.lower() in (*FORMAT_FAMILIES, "nf4"):
        return format_for_bits(fmt, bits)
    return get_format(fmt)


def run_theory(cfg: TheoryConfig) -> list[dict[str, Any]]:
    """Rows of :func:`theory_rows` for a :class:`TheoryConfig`."""
    return theory_rows(cfg.distribution(), cfg.bits, cfg.format, mask_overhead=cfg.mask_overhead)
