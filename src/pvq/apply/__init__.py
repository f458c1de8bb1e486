"""Full-model post-training compression: apply a recipe or plan, the compressed weights, saving them.

``pvq.apply(model, recipe_or_plan, calibration)`` works as a call: this module is callable and forwards to
:func:`apply` (so that the package and its main function can share the name the issue and README use).
"""

import sys
import types

from pvq.apply._algorithms import compress_matrix, needs_calibration
from pvq.apply._apply import CompressedModel, TensorRow, apply, calibration_free
from pvq.apply._compressed import CompressedWeight, format_levels, group_columns
from pvq.apply._load import load_compressed
from pvq.apply._plans import label_recipe, plan_from_allocation, read_plan
from pvq.apply._save import SaveReport, save_compressed

__all__ = [
    "CompressedModel",
    "CompressedWeight",
    "SaveReport",
    "TensorRow",
    "apply",
    "calibration_free",
    "compress_matrix",
    "format_levels",
    "group_columns",
    "label_recipe",
    "load_compressed",
    "needs_calibration",
    "plan_from_allocation",
    "read_plan",
    "save_compressed",
]


class _CallableModule(types.ModuleType):
    """``pvq.apply(...)`` is ``pvq.apply.apply(...)``."""

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return apply(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
