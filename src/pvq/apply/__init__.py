"""Full-model post-training compression: apply a recipe or plan, the compressed weights, saving them."""

from pvq.apply._algorithms import compress_matrix, needs_calibration
from pvq.apply._compressed import CompressedWeight, format_levels, group_columns
from pvq.apply._load import load_compressed
from pvq.apply._save import SaveReport, save_compressed

__all__ = [
    "CompressedWeight",
    "SaveReport",
    "compress_matrix",
    "format_levels",
    "group_columns",
    "load_compressed",
    "needs_calibration",
    "save_compressed",
]
