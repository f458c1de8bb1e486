"""GPTQ and SparseGPT on a whole matrix: one lazy-batch OBS sweep over the columns, all rows at once.

For a weight ``W`` (rows, cols) and its input Hessian ``H = sum_x x x^T`` (cols, cols) the layer output
error is ``tr((W - Q) H (W - Q)^T)``. Both algorithms (Frantar et al., GPTQ, ICLR 2023; Frantar &
Alistarh, SparseGPT, ICML 2023) visit the columns in an order, fix column ``j`` of every row (round it to
the grid, or zero it when pruned) and spread its error over the columns not yet visited through row ``j``
of ``U``, the upper Cholesky factor of ``H^-1`` (``H^-1 = U^T U``): ``W[:, j:] -= (w_j - q_j) / U_jj *
U[j, j:]``. Updates are applied lazily in blocks of 128 columns (the reference's ``blocksize``).

As in the reference implementations (IST-DASLab ``gptq``/``sparsegpt``):

- damping: ``H += damp * mean(diag H) * I`` (``damp`` = 0.01 by default, a recipe option); if the
  Cholesky factorisation still fails, a ridge growing tenfold from ``1e-10 * mean(diag H)`` is added;
- dead inputs (``H_jj = 0``, never active in calibration) get ``H_jj = 1`` and their weights are zeroed
  (they do not affect the output on the calibration data);
- ``order="act"`` visits columns by descending ``H_jj`` (act-order), ``"natural"`` left to right.

Quantization grids (see :mod:`pvq.apply._scales`): per-tensor and per-channel scales come from the whole
original matrix before the sweep. Group scales (``gN``): in natural order each group's scale is computed
when the sweep reaches the group's first column, from the group's current (error-updated) weights, as the
reference GPTQ does; blocks are sized to a multiple of the group so that a group never straddles two
blocks. With act-order the groups are **static** (the reference's ``static_groups=True``, llm-compressor's
``actorder="weight"``): every group's scale is computed before the sweep from the original weights of its
original, contiguous columns, and each column is rounded on its own original group's grid. So
:class:`~pvq.apply.CompressedWeight` stores one scale per original column group (no ``g_idx``) and its
``dequantize()`` gives exactly the weights the sweep produced.

Pruning: a fixed keep-mask (``mask``) forces the pruned weights to zero when they are visited, their error
fed forward like a rounding error (GPTQ on a sparse matrix; with no grid this is OBS reconstruction with a
fixed mask). SparseGPT's adaptive selection (``select``) chooses the mask as the sweep goes, in natural
order only: unstructured, at the start of each block, each row prunes its share of the block
(``floor(s * end) - floor(s * start)`` weights, so each row ends with exactly ``floor(s * cols)`` pruned) with
the smallest ``w_j^2 / U_jj^2`` (the reference's ``W^2 / diag(Hinv)^2``, ``U_jj^2`` being the
``[H^-1]_jj`` of the columns still to come); N:M, at the first column of each run of ``m``, each row prunes
the ``m - n`` smallest in the run. The reference instead thresholds the score over the whole block
(all rows together, so rows end with different sparsities, and ``<=`` at the k-th value prunes one extra
weight); pvq selects per row, so every row has the requested sparsity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pvq.apply._masks import nm_keep, prune_lowest
from pvq.apply._scales import Grid, GridParams, dequantize_codes, find_params, quantize_codes
from pvq.recipes import Prune, Quant

__all__ = ["SweepResult", "obs_sweep", "inverse_cholesky_upper", "BLOCK"]

BLOCK = 128


@dataclass(frozen=True)
class SweepResult:
    """Result of a sweep, in the original column order.

    ``weight`` (rows, cols): the final weights (on the grid, zero where pruned); ``codes`` (rows, cols)
    int64, ``scale``/``zero`` (rows, groups) float32 (``groups`` 1 for tensor/channel; a per-tensor scale
    is repeated on every row) when quantizing, else ``None``; ``mask`` (rows, cols) bool or ``None``.
    """

    weight: torch.Tensor
    codes: torch.Tensor | None
    scale: torch.Tensor | None
    zero: torch.Tensor | None
    mask: torch.Tensor | None


def inverse_cholesky_upper(H: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper ``U`` with ``U^T U = (H + damp * mean(diag H) * I)^-1`` (float64), ridge added if needed."""
    n = H.shape[0]
    Hd = H.to(torch.float64).clone()
    mean = float(Hd.diagonal().mean()) or 1.0
    Hd.diagonal().add_(damp * mean)
    eye = torch.eye(n, dtype=torch.float64)
    ridge = 0.0
    for _ in range(16):
        L, info = torch.linalg.cholesky_ex(Hd + ridge * eye)
        if int(info) == 0:
            Hinv = torch.cholesky_inverse(L)
            U, info2 = torch.linalg.cholesky_ex(Hinv, upper=True)
            if int(info2) == 0:
                return U
        ridge = 1e-10 * mean if ridge == 0.0 else ridge * 10.0
    raise ValueError("H is not positive semi-definite (Cholesky failed even with a ridge)")


def _static_params(W: torch.Tensor, quant: Quant, grid: Grid, mse: bool) -> GridParams:
    """Per-tensor/channel params (rows,) or per-group params (rows * groups,) from the original ``W``."""
    rows, cols = W.shape
    if quant.group_size == 0:
        p = find_params(W.reshape(1, -1), grid, mse)
        return GridParams(
            p.scale.expand(rows).clone(), None if p.zero is None else p.zero.expand(rows).clone()
        )
    if quant.group_size == -1:
        return find_params(W, grid, mse)
    g = quant.group_size
    groups = -(-cols // g)
    padded = torch.zeros(rows, groups * g, dtype=W.dtype)
    padded[:, :cols] = W
    return find_params(padded.reshape(rows * groups, g), grid, mse)


def obs_sweep(
    W: torch.Tensor,
    H: torch.Tensor,
    *,
    damp: float,
    order: str = "natural",
    quant: Quant | None = None,
    mse: bool = True,
    mask: torch.Tensor | None = None,
    select: Prune | None = None,
    dtype: torch.dtype = torch.float32,
) -> SweepResult:
    """Run GPTQ (``quant``), SparseGPT (``select``), or GPTQ with a fixed ``mask``; see the module docstring.

    ``W`` (rows, cols), ``H`` (cols, cols) any positive multiple of ``sum x x^T``; ``mse`` picks the MSE
    scale search for the grids (else absmax); ``dtype`` is the working precision of the sweep.
    """
    if select is not None and (order != "natural" or mask is not None):
        raise ValueError("adaptive mask selection runs in natural order without a fixed mask")
    rows, cols = W.shape
    W = W.to(dtype).clone()
    H = H.to(torch.float64).clone()
    dead = H.diagonal() == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0

    grid = Grid.of(quant) if quant is not None else None
    g = quant.group_size if quant is not None else 0
    groups = -(-cols // g) if g > 0 else 1
    dynamic_groups = quant is not None and g > 0 and order == "natural"
    scale = torch.zeros(rows, groups, dtype=torch.float32) if quant is not None else None
    zero = torch.zeros(rows, groups, dtype=torch.float32) if grid is not None and grid.asymmetric else None
    if quant is not None and grid is not None and not dynamic_groups:
        prm = _static_params((W if mask is None else W * mask).float(), quant, grid, mse)
        assert scale is not None
        scale.copy_(prm.scale.reshape(rows, groups))
        if zero is not None and prm.zero is not None:
            zero.copy_(prm.zero.reshape(rows, groups))

    if order == "act":
        perm = torch.argsort(H.diagonal(), descending=True, stable=True)
    elif order == "natural":
        perm = torch.arange(cols)
    else:
        raise ValueError(f"order must be act or natural, got {order!r}")
    W = W[:, perm]
    H = H[perm][:, perm]
    keep = torch.ones(rows, cols, dtype=torch.bool) if mask is None else mask[:, perm].clone()
    U = inverse_cholesky_upper(H, damp).to(dtype)
    col_group = perm // g if g > 0 else torch.zeros(cols, dtype=torch.long)

    fixed_or_selected = mask is not None or select is not None
    # the sweep works on transposed (cols, rows) copies: column j of W is then a contiguous row of Wt
    Wt = W.T.contiguous()
    keept = keep.T.contiguous()
    Qt = torch.zeros_like(Wt)
    codest = torch.zeros(cols, rows, dtype=torch.long) if quant is not None else None
    block = BLOCK
    if dynamic_groups:
        block = g * max(1, BLOCK // g)
    if select is not None and select.structured:
        block = select.m * max(1, BLOCK // select.m)

    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        count = i2 - i1
        W1 = Wt[i1:i2].clone()  # (count, rows)
        Err1 = torch.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        d = U1.diagonal()
        keep1 = keept[i1:i2]  # a view: selections below write into keept
        if select is not None and not select.structured:
            k = select.sparsity * i2 // 100 - select.sparsity * i1 // 100
            keep1.copy_(prune_lowest((W1.pow(2) / d.pow(2)[:, None]).T, k).T)
        for i in range(count):
            j = i1 + i
            w = W1[i]  # (rows,) current weights of column j
            if select is not None and select.structured and i % select.m == 0:
                e = min(i + select.m, count)
                sc = (W1[i:e].pow(2) / d[i:e].pow(2)[:, None]).T
                keep1[i:e] = nm_keep(sc, select.n, select.m).T
            if quant is not None and grid is not None:
                assert scale is not None and codest is not None
                if dynamic_groups and j % g == 0:
                    prm = find_params((W1[i : i + g] * keep1[i : i + g]).T.float(), grid, mse)
                    scale[:, j // g] = prm.scale
                    if zero is not None and prm.zero is not None:
                        zero[:, j // g] = prm.zero
                gi = int(col_group[j])
                s = scale[:, gi]
                z = zero[:, gi] if zero is not None else None
                c = quantize_codes(w if dtype == torch.float32 else w.float(), s, z, grid)
                q = dequantize_codes(c, s, z, grid).to(dtype)
                if fixed_or_selected:
                    q = q * keep1[i]
                codest[j] = c
            else:
                q = w * keep1[i]
            Qt[j] = q
            err = (w - q).div_(d[i])
            W1[i:].addr_(U1[i, i:], err, alpha=-1.0)  # rank-1 OBS update of the block, in place
            Err1[i] = err
        Wt[i2:] -= U[i1:i2, i2:].T @ Err1  # lazy update of the columns after the block

    inv = torch.argsort(perm)
    return SweepResult(
        weight=Qt.T[:, inv].contiguous(),
        codes=None if codest is None else codest.T[:, inv].contiguous(),
        scale=scale,
        zero=zero,
        mask=None if not fixed_or_selected else keept.T[:, inv].contiguous(),
    )
