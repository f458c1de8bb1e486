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
- ``order="act"`` visits columns by descending ``H_jj`` (act-order), ``"natural"`` left to right. The
  recipe default is act-order: on SmolLM2-135M's 210 linear layers (``int4:g128:gptq``, 2,048 calibration
  tokens, error on other windows of the text) it gave the lower output error in 183/210 layers, summed
  relative error 1.036 vs 1.108 (``benchmarks/bench_apply.py --orders``).

Quantization grids (see :mod:`pvq.apply._scales`): per-tensor and per-channel scales come from the whole
original matrix before the sweep. Group scales (``gN``): in natural order each group's scale is computed
when the sweep reaches the group's first column, from the group's current (error-updated) weights, as the
reference GPTQ does; blocks are sized to a multiple of the group so that a group never straddles two
blocks. With act-order the groups are **static** (the reference's ``static_groups=True``, llm-compressor's
``actorder="weight"``, its default): every group's scale is computed before the sweep from the original
weights of its original, contiguous columns, and each column is rounded on its own original group's grid. So
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

import numpy as np
import torch

from pvq.apply._masks import nm_keep, prune_lowest
from pvq.apply._scales import Grid, GridParams, dequantize_codes, find_params, quantize_codes
from pvq.apply._sweep_kernels import MODE_INT, MODE_LEVELS, MODE_PRUNE, MODE_UINT, sweep_columns
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


def inverse_cholesky_upper(H: torch.Tensor, damp: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Upper ``U`` with ``U^T U = (H + damp * mean(diag H) * I)^-1`` in ``dtype``, ridge added if needed.

    float32 is what the reference implementations use; it is several times faster than float64 here."""
    n = H.shape[0]
    Hd = H.to(dtype).clone()
    mean = float(Hd.diagonal().mean()) or 1.0
    Hd.diagonal().add_(damp * mean)
    eye = torch.eye(n, dtype=dtype)
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


class _SweepState:
    """The sweep's outputs and grid, and the two implementations of its inner loop over columns ``a..b-1`` of
    the block starting at column ``i1``: compiled (float32, :mod:`pvq.apply._sweep_kernels`) and torch (the
    reference, any dtype). Both write ``Qt``/``codest`` rows ``i1+a..i1+b-1`` and ``Err1`` rows ``a..b-1``."""

    def __init__(
        self,
        Wt: torch.Tensor,
        keept: torch.Tensor,
        Qt: torch.Tensor,
        codest: torch.Tensor | None,
        scale: torch.Tensor | None,
        zero: torch.Tensor | None,
        grid: Grid | None,
        quant: Quant | None,
        mse: bool,
        dynamic_groups: bool,
        g: int,
        col_group: torch.Tensor,
    ) -> None:
        self.keept, self.Qt, self.codest = keept, Qt, codest
        self.scale, self.zero, self.grid, self.quant, self.mse = scale, zero, grid, quant, mse
        self.dynamic_groups, self.g, self.col_group = dynamic_groups, g, col_group
        self.masked = False
        self.rows = Wt.shape[1]

    def group_params(self, Wg: torch.Tensor, keepg: torch.Tensor, gi: int) -> None:
        """Grid of group ``gi`` from its current weights ``Wg`` (g, rows) where kept (natural order)."""
        assert self.scale is not None and self.grid is not None
        prm = find_params((Wg * keepg).T.float(), self.grid, self.mse)
        self.scale[:, gi] = prm.scale
        if self.zero is not None and prm.zero is not None:
            self.zero[:, gi] = prm.zero

    def _scales_t(self, i1: int, a: int, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Scale and zero point (b - a, rows) of each weight of columns ``i1+a..i1+b-1``."""
        assert self.scale is not None
        gidx = self.col_group[i1 + a : i1 + b]
        s = self.scale[:, gidx].T.contiguous()
        z = None if self.zero is None else self.zero[:, gidx].T.contiguous()
        return s, z

    def columns_compiled(
        self, W1: torch.Tensor, U1: torch.Tensor, i1: int, a: int, b: int, Err1: torch.Tensor
    ) -> None:
        count, n = W1.shape[0], b - a
        keep = self.keept[i1 : i1 + count].numpy()
        Q = np.empty((n, self.rows), dtype=np.float32)
        C = np.zeros((n, self.rows), dtype=np.float32)
        S = Z = C
        mids = lv = np.zeros(1, dtype=np.float32)
        mode, qmin, qmax = MODE_PRUNE, 0.0, 0.0
        grid = self.grid
        if grid is not None:
            s, z = self._scales_t(i1, a, b)
            S = s.numpy()
            if z is not None:
                Z = z.numpy()
            if grid.levels is not None:
                mode = MODE_LEVELS
                lv = grid.levels.to(torch.float32).numpy()
                mids = (lv[1:] + lv[:-1]) / np.float32(2)
            else:
                mode = MODE_UINT if z is not None else MODE_INT
            qmin, qmax = float(grid.qmin), float(grid.qmax)
        sweep_columns(
            W1.numpy(),
            U1.numpy(),
            a,
            b,
            S,
            Z,
            keep,
            self.masked,
            mode,
            np.float32(qmin),
            np.float32(qmax),
            mids,
            lv,
            Q,
            C,
            Err1.numpy(),
        )
        self.Qt[i1 + a : i1 + b] = torch.from_numpy(Q)
        if self.codest is not None:
            self.codest[i1 + a : i1 + b] = torch.from_numpy(C).long()

    def columns_torch(
        self, W1: torch.Tensor, U1: torch.Tensor, i1: int, a: int, b: int, Err1: torch.Tensor
    ) -> None:
        d = U1.diagonal()
        keep1 = self.keept[i1 : i1 + W1.shape[0]]
        grid, dtype = self.grid, W1.dtype
        for i in range(a, b):
            j = i1 + i
            w = W1[i]  # (rows,) current weights of column j
            if grid is not None:
                assert self.scale is not None and self.codest is not None
                gi = int(self.col_group[j])
                s = self.scale[:, gi]
                z = self.zero[:, gi] if self.zero is not None else None
                c = quantize_codes(w if dtype == torch.float32 else w.float(), s, z, grid)
                q = dequantize_codes(c, s, z, grid).to(dtype)
                if self.masked:
                    q = q * keep1[i]
                self.codest[j] = c
            else:
                q = w * keep1[i]
            self.Qt[j] = q
            err = (w - q).div_(d[i])
            W1[i:].addr_(U1[i, i:], err, alpha=-1.0)  # rank-1 OBS update of the block, in place
            Err1[i] = err


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
    compiled: bool = True,
) -> SweepResult:
    """Run GPTQ (``quant``), SparseGPT (``select``), or GPTQ with a fixed ``mask``; see the module docstring.

    ``W`` (rows, cols), ``H`` (cols, cols) any positive multiple of ``sum x x^T``; ``mse`` picks the MSE
    scale search for the grids (else absmax); ``dtype`` is the working precision of the sweep.
    ``compiled``: the inner column loop in the compiled kernel (float32 only; the torch loop, the reference,
    is used for other dtypes or when False).
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
    U = inverse_cholesky_upper(H, damp, dtype)
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

    sweep = _SweepState(Wt, keept, Qt, codest, scale, zero, grid, quant, mse, dynamic_groups, g, col_group)
    sweep.masked = fixed_or_selected
    compiled = compiled and dtype == torch.float32
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        count = i2 - i1
        W1 = Wt[i1:i2].clone()  # (count, rows)
        U1 = U[i1:i2, i1:i2].contiguous()
        d = U1.diagonal()
        keep1 = keept[i1:i2]  # a view: selections below write into keept
        if select is not None and not select.structured:
            k = select.sparsity * i2 // 100 - select.sparsity * i1 // 100
            keep1.copy_(prune_lowest((W1.pow(2) / d.pow(2)[:, None]).T, k).T)
        # segments of the block between points where a mask or a group's grid is chosen from current weights
        cuts = {0, count}
        if select is not None and select.structured:
            cuts.update(range(0, count, select.m))
        if dynamic_groups:
            cuts.update(i for i in range(count) if (i1 + i) % g == 0)
        edges = sorted(cuts)
        Err1 = torch.zeros_like(W1)
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            if select is not None and select.structured and a % select.m == 0:
                e = min(a + select.m, count)
                sc = (W1[a:e].pow(2) / d[a:e].pow(2)[:, None]).T
                keep1[a:e] = nm_keep(sc, select.n, select.m).T
            if dynamic_groups and (i1 + a) % g == 0:
                sweep.group_params(W1[a : a + g], keep1[a : a + g], (i1 + a) // g)
            if compiled:
                sweep.columns_compiled(W1, U1, i1, a, b, Err1)
            else:
                sweep.columns_torch(W1, U1, i1, a, b, Err1)
        Wt[i2:] -= U[i1:i2, i2:].T @ Err1  # lazy update of the columns after the block

    inv = torch.argsort(perm)
    return SweepResult(
        weight=Qt.T[:, inv].contiguous(),
        codes=None if codest is None else codest.T[:, inv].contiguous(),
        scale=scale,
        zero=zero,
        mask=None if not fixed_or_selected else keept.T[:, inv].contiguous(),
    )
