"""Full-model post-training compression: apply a recipe or plan, the compressed weights, saving them."""

from pvq.apply._compressed import CompressedWeight, format_levels, group_columns

__all__ = ["CompressedWeight", "format_levels", "group_columns"]
