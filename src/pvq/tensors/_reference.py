"""Direct implementations of the published per-tensor algorithm (for tests and the benchmark).

These do what the paper's code does, one full pass over the tensor per candidate: 100 candidate
clipping thresholds ``t_i = i (max|w| + 0.5) / 100``, step ``t_i / (2^(b-1) - 1)`` in float32,
``clamp(round(w / step), -2^(b-1), 2^(b-1) - 1) * step``, squared error summed in float32, the first
lowest kept; then the final MSE in float32. Pruning: zero the ``int(s n)`` smallest |w|.
:func:`published_quant_vectorised` evaluates a chunk of candidates per pass (the fair baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "ReferenceQuant",
    "published_candidate_loss",
    "published_quant",
    "published_quant_vectorised",
    "published_prune_mse",
    "published_sweep_reference",
]


@dataclass(frozen=True)
class ReferenceQuant:
    """index (0-based candidate), step (float32 delta), mse and signal (float32 means), zeros, snr_db."""

    index: int
    step: float
    mse: float
    signal: float
    zeros: int

    @property
    def snr_db(self) -> float:
        return float(10 * np.log10(self.signal / self.mse)) if self.mse > 0 else float("inf")


def _qmin_qmax(bits: int) -> tuple[int, int]:
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _step(t_thr: float, bits: int) -> torch.Tensor:
    """float32 step of a clipping threshold, computed as the published quantizer does."""
    return torch.tensor(t_thr).float() / float(2 ** (bits - 1) - 1)


def _quantize(t: torch.Tensor, step: torch.Tensor, bits: int) -> torch.Tensor:
    qmin, qmax = _qmin_qmax(bits)
    return torch.clamp(torch.round(t / step), qmin, qmax) * step


def published_candidate_loss(t: torch.Tensor, step: torch.Tensor, bits: int) -> float:
    """The float32 squared-error sum of one candidate, reduced as the published loss is."""
    err = (t - _quantize(t, step, bits)) ** 2
    return float(torch.sum(torch.sum(err.view(len(t), -1), dim=1)))


def _final(t: torch.Tensor, idx: int, step: torch.Tensor, bits: int) -> ReferenceQuant:
    q = _quantize(t, step, bits)
    mse = float(((t - q) ** 2).mean())
    signal = float(torch.mean(t**2))
    return ReferenceQuant(idx, float(step), mse, signal, int((q == 0).sum()))


def published_quant(w: torch.Tensor, bits: int, num: int = 100, margin: float = 0.5) -> ReferenceQuant:
    """The published grid search, literally: one pass per candidate."""
    t = w.detach().to(torch.float32).reshape(-1)
    step_size = (max(abs(float(t.min())), float(t.max())) + margin) / num
    losses = np.zeros(num + 1)
    losses[0] = np.inf
    for i in range(1, num + 1):
        losses[i] += published_candidate_loss(t, _step(step_size * i, bits), bits)
    best = int(losses.argmin())
    return _final(t, best - 1, _step(step_size * best, bits), bits)


def published_quant_vectorised(
    w: torch.Tensor, bits: int, num: int = 100, margin: float = 0.5, chunk_elems: int = 1 << 24
) -> ReferenceQuant:
    """The same search with a chunk of candidates per pass: (k, n) tensors, errors summed over n."""
    t = w.detach().to(torch.float32).reshape(-1)
    qmin, qmax = _qmin_qmax(bits)
    step_size = (max(abs(float(t.min())), float(t.max())) + margin) / num
    thr = torch.tensor(step_size * np.arange(1, num + 1), dtype=torch.float64).float()
    steps = thr / float(qmax)  # (num,)
    k = max(1, min(num, chunk_elems // max(1, t.numel())))
    losses = []
    for j in range(0, num, k):
        s = steps[j : j + k, None]  # (k, 1)
        err = (t[None, :] - torch.clamp(torch.round(t[None, :] / s), qmin, qmax) * s) ** 2
        losses.append(err.sum(dim=1))
    best = int(torch.argmin(torch.cat(losses)))
    return _final(t, best, steps[best], bits)


def published_prune_mse(w: torch.Tensor, sparsity: float) -> float:
    """MSE (float64) of zeroing the ``int(sparsity * n)`` smallest |w| (top-k by sort, as published)."""
    t = w.detach().to(torch.float64).reshape(-1)
    j = int(sparsity * t.numel())
    mask = torch.ones_like(t)
    _, idx = torch.abs(t).sort(descending=False)
    mask[idx[:j]] = 0
    return float(torch.mean((t - mask * t) ** 2))


def published_sweep_reference(weights: dict[str, torch.Tensor], bits: list[int]) -> list[dict[str, float]]:
    """The whole per-tensor sweep done directly (benchmark baseline): for every tensor and bit-width the
    vectorised grid search, magnitude pruning (plain and corrected, by sorting |w|) and the kurtosis."""
    rows = []
    for name, w in weights.items():
        t = w.detach().to(torch.float32).reshape(-1)
        c = t.double() - t.double().mean()
        kurt = float((c**4).mean() / (c**2).mean() ** 2)
        for b in bits:
            q = published_quant_vectorised(t, b)
            p = published_prune_mse(t, 1.0 - b / 16)
            qs = float(np.float32(q.zeros) / np.float32(t.numel()))
            pc = published_prune_mse(t, 1.0 - (1.0 - qs) * b / 16)
            sig = float((t.double() ** 2).mean())
            rows.append(
                {
                    "name": name,
                    "bits": b,
                    "kurtosis": kurt,
                    "quant_snr_db": q.snr_db,
                    "prune_snr_db": float(10 * np.log10(sig / p)) if p > 0 else float("inf"),
                    "prune_snr_corrected_db": float(10 * np.log10(sig / pc)) if pc > 0 else float("inf"),
                }
            )
    return rows
