"""Per-layer post-training comparison (paper §4, App. F, Fig. 4) with exact optima for both methods.

Problems: for one output row ``w0`` (n,) of a layer and the Gram matrix ``G = X^T X`` (n, n) of its
inputs, pruning ``min ||X(w - w0)||^2 s.t. ||w||_0 <= floor(n b / 16)`` (eq. 7) and quantization
``min ||X(scale z - w0)||^2`` over integers ``z`` in the b-bit box (eq. 4). Each solver returns a
:class:`SolveResult`; :func:`solve_row` runs several, :func:`capture_layer_problems` builds the problems
from a model and calibration data, :func:`solve_problem` runs a whole chunk.
"""

from pvq.layerwise._capture import (
    GramAccumulator,
    capture_grams,
    capture_layer_problems,
    resolve_layer,
    unfold_conv_input,
)
from pvq.layerwise._chunk import chunk_summary, solve_chunk_task, solve_problem
from pvq.layerwise._linalg import prune_count, refit, safe_cholesky, signal_power
from pvq.layerwise._problem import ChunkProblem, check_problem, chunk_ranges, load_problem_npz
from pvq.layerwise._prune_bnb import prune_exact
from pvq.layerwise._prune_magnitude import magnitude_mask, prune_magnitude
from pvq.layerwise._prune_obs import prune_obs
from pvq.layerwise._prune_swap import prune_swap
from pvq.layerwise._quant_heuristics import quant_gptq, quant_rtn
from pvq.layerwise._quant_sdp import (
    SdpCost,
    SdpFailed,
    SdpSolution,
    quant_sdp_bound,
    quant_sdp_rounding,
    sdp_cost,
    solve_sdp,
)
from pvq.layerwise._quant_sphere import box_order, quant_exact, vblast_order
from pvq.layerwise._range import layer_scale
from pvq.layerwise._result import SolveResult, relative_gap, row_error
from pvq.layerwise._run import run_layer_problems, task_key
from pvq.layerwise._solvers import (
    DEFAULT_SOLVERS,
    SOLVERS,
    SolverSpec,
    result_rows,
    sdp_skips,
    solve_row,
    solver_names,
)

__all__ = [
    "SolveResult",
    "relative_gap",
    "row_error",
    "prune_count",
    "refit",
    "safe_cholesky",
    "signal_power",
    "magnitude_mask",
    "prune_magnitude",
    "prune_obs",
    "prune_swap",
    "prune_exact",
    "quant_rtn",
    "quant_gptq",
    "quant_exact",
    "box_order",
    "vblast_order",
    "SdpSolution",
    "solve_sdp",
    "SdpCost",
    "SdpFailed",
    "sdp_cost",
    "quant_sdp_bound",
    "quant_sdp_rounding",
    "SolverSpec",
    "SOLVERS",
    "DEFAULT_SOLVERS",
    "solver_names",
    "solve_row",
    "sdp_skips",
    "result_rows",
    "ChunkProblem",
    "chunk_ranges",
    "check_problem",
    "load_problem_npz",
    "layer_scale",
    "GramAccumulator",
    "unfold_conv_input",
    "resolve_layer",
    "capture_grams",
    "capture_layer_problems",
    "solve_problem",
    "solve_chunk_task",
    "chunk_summary",
    "run_layer_problems",
    "task_key",
]
