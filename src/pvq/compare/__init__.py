"""The verdict: prune or quantize, per tensor, per layer and for the whole model under a size budget.

``options_from_rows`` turns measured errors into storage options (bits per weight incl. overhead, SNR);
``tensor_verdicts`` picks the winner per tensor and bit budget; ``allocate`` chooses one option per
tensor under a total size budget; ``layer_verdicts`` summarises the layer-wise (output error) solves;
``run_compare`` orchestrates a whole ``pvq compare`` run; ``compare`` is that run from Python (``pvq.compare(...)``:
this package is callable and forwards to :func:`compare`).
"""

import sys
import types

from pvq.compare._api import compare
from pvq.compare._budget import Allocation, allocate, lower_hull, parse_budget, uniform_allocation
from pvq.compare._options import (
    FAMILIES,
    MASK_BITS_PER_WEIGHT,
    Option,
    applied_costs,
    magnitude_prune_snr,
    nm_metadata_bits,
    nm_prune_mask,
    options_from_rows,
)
from pvq.compare._run import DEFAULT_GRANULARITY, CompareConfig, CompareResult, run_compare
from pvq.compare._text import Verdict, verdict_text
from pvq.compare._verdict import (
    CLOSE_MARGIN_DB,
    LayerVerdict,
    TensorVerdict,
    bits_summary,
    layer_verdicts,
    tensor_verdicts,
)

__all__ = [
    "compare",
    "CompareConfig",
    "DEFAULT_GRANULARITY",
    "CompareResult",
    "run_compare",
    "Verdict",
    "verdict_text",
    "Allocation",
    "allocate",
    "lower_hull",
    "parse_budget",
    "uniform_allocation",
    "FAMILIES",
    "MASK_BITS_PER_WEIGHT",
    "Option",
    "magnitude_prune_snr",
    "nm_metadata_bits",
    "nm_prune_mask",
    "options_from_rows",
    "applied_costs",
    "CLOSE_MARGIN_DB",
    "LayerVerdict",
    "TensorVerdict",
    "bits_summary",
    "layer_verdicts",
    "tensor_verdicts",
]


class _CallableModule(types.ModuleType):
    """``pvq.compare(...)`` is ``pvq.compare.compare(...)``."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
