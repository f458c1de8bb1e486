"""Full-model post-training compression: apply a recipe or plan, the compressed weights, saving them."""

from pvq.apply._algorithms import compress_matrix, needs_calibration
from pvq.apply._compressed import CompressedWeight, format_levels, group_columns

__all__ = ["CompressedWeight", "compress_matrix", "format_levels", "group_columns", "needs_calibration"]
