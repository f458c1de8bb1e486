"""Storage options for one tensor: how many bits per weight each costs and the SNR it keeps.

An *option* is one way to store a weight tensor (FP16, INT-b, magnitude pruning at a keep ratio,
N:M pruning, N:M pruning of an INT-b tensor, ...), with its storage cost in bits per weight and the
SNR (dB) of the reconstructed tensor. Costs are against FP16 values, as the paper's equal-compression
accounting (b bits <-> keep ratio b/16); ``overhead`` adds what the paper leaves out: one bit per
weight for an unstructured pruning mask, ``ceil(log2 C(M, N))/M`` bits per weight for N:M metadata
(2:4: 3/4 bit per weight), as :mod:`pvq.formats` counts them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pvq.formats import NM, metadata_bits_per_weight

__all__ = [
    "Option",
    "FAMILIES",
    "DISPLAY",
    "MASK_BITS_PER_WEIGHT",
    "nm_metadata_bits",
    "options_from_rows",
    "applied_costs",
    "magnitude_prune_snr",
    "nm_prune_mask",
]

FP16_BITS = 16.0
MASK_BITS_PER_WEIGHT = 1.0  # an uncompressed bitmask for unstructured sparsity
FAMILIES = ("quantization", "pruning", "n:m", "quant+n:m", "quant+prune", "fp16")
DISPLAY = {  # how the families read in sentences
    "quantization": "quantization",
    "pruning": "pruning",
    "n:m": "N:M pruning",
    "quant+n:m": "N:M pruning + quantization",
    "quant+prune": "pruning + quantization",
    "fp16": "FP16 (uncompressed)",
}


@dataclass(frozen=True)
class Option:
    """One way to store a tensor.

    ``family`` is one of :data:`FAMILIES`; ``label`` is human-readable (``"INT4"``, ``"prune 75%"``,
    ``"2:4 + INT6"``); ``bits_per_weight`` is the storage cost averaged over all weights of the tensor,
    including overhead when it was counted; ``snr_db`` the tensor SNR (dB, ``inf`` for lossless).
    """

    family: str
    label: str
    bits_per_weight: float
    snr_db: float
    overhead_bits: float = 0.0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if not self.bits_per_weight > 0:
            raise ValueError(f"bits_per_weight must be > 0, got {self.bits_per_weight}")

    @property
    def rel_error(self) -> float:
        """Noise-to-signal power ratio ``10^(-SNR/10)`` (0 for lossless)."""
        if math.isinf(self.snr_db) and self.snr_db > 0:
            return 0.0
        if math.isnan(self.snr_db):
            return math.inf
        return 10.0 ** (-self.snr_db / 10.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "label": self.label,
            "bits_per_weight": self.bits_per_weight,
            "snr_db": self.snr_db,
            "overhead_bits": self.overhead_bits,
        }


def nm_metadata_bits(n: int, m: int) -> float:
    """Bits per weight of N:M metadata (``pvq.formats`` accounting: the index of the kept subset of
    each group, ``ceil(log2 C(M, N)) / M``; 2:4 -> 3/4 bit per weight)."""
    return metadata_bits_per_weight(NM(n, m))


def options_from_rows(
    rows: Iterable[Mapping[str, Any]],
    extra: Iterable[Mapping[str, Any]] = (),
    count_overhead: bool = True,
) -> list[Option]:
    """All options of one tensor, from its tensor-sweep rows (DESIGN.md keys) and pvq compare's extras.

    ``rows``: one per bit-width with ``bits``, ``quant_snr_db``, ``prune_snr_db`` (pruning at keep b/16).
    ``extra``: rows with ``family``, ``label``, ``keep`` (fraction of values stored), ``value_bits``
    (bits per stored value), ``meta_bits`` (overhead bits per weight) and ``snr_db``; the cost is
    ``keep * value_bits (+ meta_bits when count_overhead)``. Pruning from ``rows`` gets the mask bit
    added when ``count_overhead``. FP16 (lossless, 16 bits) is always an option.
    """
    out = [Option("fp16", "FP16", FP16_BITS, math.inf)]
    for r in rows:
        b = int(r["bits"])
        out.append(Option("quantization", f"INT{b}", float(b), float(r["quant_snr_db"])))
        for key, val in r.items():  # other quantization formats of the sweep: quant_<format>_snr_db
            fmt = (
                key[len("quant_") : -len("_snr_db")]
                if key.startswith("quant_") and key.endswith("_snr_db")
                else ""
            )
            if fmt and fmt != "per_channel" and val is not None:
                out.append(Option("quantization", fmt.upper().replace("_", " "), float(b), float(val)))
        if not count_overhead:  # the paper's accounting: keep b/16 of FP16 values, mask for free
            out.append(
                Option("pruning", f"prune {100 - 100 * b / 16:.1f}%", float(b), float(r["prune_snr_db"]))
            )
    for e in extra:
        meta = float(e.get("meta_bits", 0.0)) if count_overhead else 0.0
        cost = float(e["keep"]) * float(e["value_bits"]) + meta
        if e["family"] == "pruning" and not count_overhead:
            continue  # already taken from the sweep rows
        if cost <= 0:
            continue
        out.append(Option(str(e["family"]), str(e["label"]), cost, float(e["snr_db"]), meta))
    return out


def applied_costs(opts: Sequence[Option], shape: Sequence[int]) -> list[Option]:
    """``opts`` re-costed at the real bits per weight of the recipe pvq applies for each label
    (:func:`pvq.apply.label_recipe`, :func:`pvq.recipes.recipe_bits`: FP16 scales, bitmask padding, row
    offsets, N:M metadata). An allocation over these costs keeps its budget on the model ``pvq apply`` builds
    from it (with the sweep's costs a 4-bit plan came out at 4.04 real bits). Left out: each tensor's one FP16
    scale (the labels map to per-tensor recipes; 16 bits a tensor, so "all INT4" stays a 4-bit option). Options
    whose label maps to no recipe keep their cost."""
    from dataclasses import replace

    from pvq.apply import label_recipe
    from pvq.errors import PvqInputError
    from pvq.recipes import recipe_bits

    out = []
    for o in opts:
        try:
            bits = recipe_bits(label_recipe(o.label), shape)
            real = bits.total - bits.scales
        except (PvqInputError, ValueError):
            real = o.bits_per_weight
        out.append(replace(o, bits_per_weight=real, overhead_bits=max(0.0, o.overhead_bits + real - o.bits_per_weight)))
    return out


# --------------------------------------------------------------------------- pure numerics


def magnitude_prune_snr(
    w: np.ndarray | torch.Tensor, keeps: Sequence[float], presorted: bool = False
) -> np.ndarray:
    """SNR (dB) of magnitude pruning at each keep ratio: zero the ``floor((1 - keep) n)`` smallest |w|.

    One sort and a prefix sum of w² (float64); ``inf`` where nothing is pruned. ``presorted``: ``w``
    already holds |w| in ascending order.
    """
    x = torch.as_tensor(w).detach().reshape(-1).to(torch.float64)
    sq = x * x if presorted else torch.sort(x * x).values
    csum = torch.cumsum(sq, 0)
    total = float(csum[-1]) if sq.numel() else 0.0
    n = sq.numel()
    out = np.empty(len(keeps))
    for i, k in enumerate(keeps):
        n_zero = int(math.floor((1.0 - float(k)) * n + 1e-9))
        err = float(csum[n_zero - 1]) if n_zero > 0 else 0.0
        out[i] = math.inf if err <= 0 else (10 * math.log10(total / err) if total > 0 else math.nan)
    return out


def nm_prune_mask(w: torch.Tensor, n: int, m: int) -> torch.Tensor | None:
    """Boolean keep-mask of N:M pruning (keep the ``n`` largest |w| of every ``m`` consecutive inputs).

    Groups run along the input-channel axis (axis 1), with the kernel's spatial positions outside, as
    sparse tensor cores expect: ``(O, I, kh, kw)`` is viewed as ``(O, kh, kw, I)``. Returns ``None``
    when the input size is not a multiple of ``m`` (depthwise convolutions, odd widths).
    """
    if w.ndim < 2 or w.shape[1] % m != 0:
        return None
    perm = (0, *range(2, w.ndim), 1)
    wp = w.permute(*perm).contiguous()  # (O, ..., I)
    groups = wp.abs().reshape(-1, m)
    idx = torch.topk(groups, n, dim=1).indices
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(1, idx, True)
    inv = [0] * w.ndim
    for i, p in enumerate(perm):
        inv[p] = i
    return keep.reshape(wp.shape).permute(*inv).contiguous()
