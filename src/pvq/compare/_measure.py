"""Per-tensor measurements that ``pvq compare`` adds to the tensor sweep: pruning at every size with the
mask counted, N:M pruning, and pruning combined with quantization (both exact, one tensor at a time)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from pvq.compare._options import MASK_BITS_PER_WEIGHT, magnitude_prune_snr, nm_metadata_bits, nm_prune_mask

__all__ = ["extra_options", "combined_snr_db", "mask_energy", "NM_PATTERNS", "COMBINED_KEEPS"]

NM_PATTERNS = ((2, 4), (1, 4))
COMBINED_KEEPS = (0.5,)  # unstructured magnitude pruning then INT-b quantization of the kept values

# quant_snr(values (k,), bits) -> {bits: SNR dB of INT-b quantization of ``values``}
QuantSnrFn = Callable[[torch.Tensor, Sequence[int]], dict[int, float]]


def mask_energy(w: torch.Tensor, keep: torch.Tensor) -> tuple[float, float, int]:
    """(total energy sum w², energy of the kept values, number kept) in float64, for :func:`combined_snr_db`."""
    sq = w.reshape(-1).to(torch.float64).square()
    k = keep.reshape(-1)
    return float(sq.sum()), float(torch.where(k, sq, 0.0).sum()), int(k.sum())


def combined_snr_db(energies: tuple[float, float, int], kept_quant_snr_db: float) -> float:
    """SNR (dB) of pruning and quantizing the kept values, from :func:`mask_energy` and the SNR of the
    quantization of the kept values alone: error = dropped energy + n_kept · MSE_kept."""
    total, kept_e, n_kept = energies
    dropped = max(total - kept_e, 0.0)
    if n_kept == 0:
        err = total
    else:
        mse_kept = (
            0.0 if math.isinf(kept_quant_snr_db) else (kept_e / n_kept) * 10 ** (-kept_quant_snr_db / 10)
        )
        err = dropped + n_kept * mse_kept
    if total <= 0:
        return math.nan
    return math.inf if err <= 0 else 10 * math.log10(total / err)


def extra_options(w: torch.Tensor, bits: Sequence[int], quant_snr: QuantSnrFn) -> list[dict[str, Any]]:
    """Options beyond the sweep rows, as dicts for :func:`~pvq.compare.options_from_rows`:

    - unstructured magnitude pruning of FP16 values at keep k/16, k = 1..15 (1-bit mask as overhead);
    - N:M pruning (2:4, 1:4) of FP16 values, and of INT-b values (metadata as overhead);
    - unstructured pruning to keep 50 % then INT-b quantization of the kept values (mask as overhead).
    ``quant_snr`` quantizes a 1-D tensor at each bit-width (the tensor sweep, exact optimal scale).
    """
    out: list[dict[str, Any]] = []
    flat = w.reshape(-1)
    sorted_abs, order = torch.sort(flat.abs(), stable=True)  # one sort serves every magnitude mask
    keeps = [k / 16 for k in range(1, 16)]
    for k, snr in zip(keeps, magnitude_prune_snr(sorted_abs, keeps, presorted=True), strict=True):
        out.append(
            {
                "family": "pruning",
                "label": f"prune {100 * (1 - k):.1f}%",
                "keep": k,
                "value_bits": 16.0,
                "meta_bits": MASK_BITS_PER_WEIGHT,
                "snr_db": float(snr),
            }
        )
    for n, m in NM_PATTERNS:
        mask = nm_prune_mask(w, n, m)
        if mask is None:
            continue
        meta = nm_metadata_bits(n, m)
        en = mask_energy(w, mask)
        out.append(
            {
                "family": "n:m",
                "label": f"{n}:{m}",
                "keep": n / m,
                "value_bits": 16.0,
                "meta_bits": meta,
                "snr_db": combined_snr_db(en, math.inf),
            }
        )
        kept_snr = quant_snr(w[mask], bits)
        for b in bits:
            out.append(
                {
                    "family": "quant+n:m",
                    "label": f"{n}:{m} + INT{b}",
                    "keep": n / m,
                    "value_bits": float(b),
                    "meta_bits": meta,
                    "snr_db": combined_snr_db(en, kept_snr[b]),
                }
            )
    for keep_ratio in COMBINED_KEEPS:
        n_zero = int(math.floor((1 - keep_ratio) * flat.numel()))
        mask = torch.ones_like(flat, dtype=torch.bool)
        mask[order[:n_zero]] = False
        kept_snr = quant_snr(flat[mask], bits)
        en = mask_energy(flat, mask)
        for b in bits:
            out.append(
                {
                    "family": "quant+prune",
                    "label": f"prune {100 * (1 - keep_ratio):.0f}% + INT{b}",
                    "keep": keep_ratio,
                    "value_bits": float(b),
                    "meta_bits": MASK_BITS_PER_WEIGHT,
                    "snr_db": combined_snr_db(en, kept_snr[b]),
                }
            )
    return out
