"""Representation distances between a compressed model and the original (App. I, Figs. 8-9).

Per layer, on a fixed batch: SNR in dB of the compressed activations against the original ones, and
linear CKA (Kornblith et al. 2019). Activations are flattened per example: (B, ...) -> (B, D).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pvq.metrics import snr_db

__all__ = ["linear_cka", "activation_snr_db", "capture_activations", "representation_distances"]


@torch.no_grad()
def capture_activations(model: nn.Module, layers: Sequence[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of the named submodules on input ``x`` (eval mode), each flattened to (B, D) float64 on CPU."""
    mods = dict(model.named_modules())
    missing = [n for n in layers if n not in mods]
    if missing:
        raise ValueError(f"no such layer(s): {', '.join(missing)}")
    out: dict[str, torch.Tensor] = {}
    hooks = [
        mods[n].register_forward_hook(lambda _m, _i, o, n=n: out.__setitem__(n, o.detach().flatten(1).double().cpu()))
        for n in layers
    ]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return out


def representation_distances(
    reference: dict[str, torch.Tensor], current: dict[str, torch.Tensor]
) -> list[dict[str, float | str]]:
    """Rows ``{"layer", "snr_db", "cka"}`` for every layer in ``reference`` (both from ``capture_activations``)."""
    return [
        {"layer": n, "snr_db": activation_snr_db(reference[n], current[n]), "cka": linear_cka(reference[n], current[n])}
        for n in reference
    ]


# ---------------------------------------------------------------- pure numeric functions


def activation_snr_db(reference: torch.Tensor, x: torch.Tensor) -> float:
    """``10 log10(E[ref²] / E[(ref − x)²])`` in dB (inf when identical)."""
    ref = reference.double()
    return float(snr_db(float((ref**2).mean()), float(((ref - x.double()) ** 2).mean())))


def linear_cka(X: torch.Tensor, Y: torch.Tensor) -> float:
    """Linear CKA of (n, p) and (n, q) representations: ``‖YcᵀXc‖²_F / (‖XcᵀXc‖_F ‖YcᵀYc‖_F)``.

    Xc, Yc are column-centred. In [0, 1]; 1 for identical representations; invariant to orthogonal
    transforms and isotropic scaling of either argument. Computed via the n×n Gram matrices when p, q > n.
    """
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"linear_cka needs (n, p) and (n, q) with the same n, got {tuple(X.shape)}, {tuple(Y.shape)}")
    X = X.double() - X.double().mean(0, keepdim=True)
    Y = Y.double() - Y.double().mean(0, keepdim=True)
    if min(X.shape[1], Y.shape[1]) > X.shape[0]:
        K, L = X @ X.T, Y @ Y.T  # (n, n): ‖YᵀX‖² = <K, L>
        num = float((K * L).sum())
        den = float(torch.linalg.norm(K) * torch.linalg.norm(L))
    else:
        num = float(torch.linalg.norm(Y.T @ X) ** 2)
        den = float(torch.linalg.norm(X.T @ X) * torch.linalg.norm(Y.T @ Y))
    if den == 0.0:
        return float("nan")
    return num / den
