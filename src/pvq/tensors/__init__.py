"""Per-tensor comparison of quantization and magnitude pruning (paper Sec. 3.4, App. C, Fig. 3, Table 2).

``sweep(weights, bits=range(2, 9), range_search="optimal"|"grid", ...)`` measures every tensor at every
bit-width from a single sort of the tensor: grids are scored in closed form per cell with binary
searches over prefix sums, pruning at any ratio is one prefix sum.
"""

from pvq.tensors._granular import Granularity, granular_columns, granularity_summary, parse_granularities
from pvq.tensors._grids import int_grid_sse_f32, int_levels, levels_sse, published_deltas
from pvq.tensors._kde import WinDensity, win_density
from pvq.tensors._measure import RANGE_SEARCHES, SweepConfig, measure_tensor
from pvq.tensors._optimal import OptimalScale, direct_sse, optimal_scale, sweep_interval
from pvq.tensors._perchannel import per_channel_quant_sse
from pvq.tensors._prune import corrected_keep, nm_prune_sse, num_pruned, per_channel_prune_sse, prune_sse
from pvq.tensors._published import PAPER_TABLE2, load_published
from pvq.tensors._sorted import CellStats, SortedTensor
from pvq.tensors._stats import excess_to_pearson, kurtosis
from pvq.tensors._sweep import SweepResult, as_weights, summarize, sweep

__all__ = [
    "sweep",
    "SweepResult",
    "SweepConfig",
    "RANGE_SEARCHES",
    "measure_tensor",
    "Granularity",
    "parse_granularities",
    "granular_columns",
    "granularity_summary",
    "summarize",
    "as_weights",
    "SortedTensor",
    "CellStats",
    "levels_sse",
    "int_levels",
    "int_grid_sse_f32",
    "published_deltas",
    "optimal_scale",
    "OptimalScale",
    "sweep_interval",
    "direct_sse",
    "per_channel_quant_sse",
    "prune_sse",
    "num_pruned",
    "corrected_keep",
    "per_channel_prune_sse",
    "nm_prune_sse",
    "kurtosis",
    "excess_to_pearson",
    "win_density",
    "WinDensity",
    "load_published",
    "PAPER_TABLE2",
]
