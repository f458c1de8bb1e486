"""Recipes: one grammar for how a tensor or a model is compressed, per-tensor plans, real bits per weight."""

from pvq.recipes._bits import FP16_BITS, BitsBreakdown, recipe_bits, rows_and_inputs
from pvq.recipes._plan import Plan, load_plan
from pvq.recipes._recipe import (
    GRAMMAR,
    PRUNE_CRITERIA,
    QUANT_ALGORITHMS,
    QUANT_FORMATS,
    Prune,
    Quant,
    Recipe,
    parse_recipe,
)

__all__ = [
    "FP16_BITS",
    "GRAMMAR",
    "PRUNE_CRITERIA",
    "QUANT_ALGORITHMS",
    "QUANT_FORMATS",
    "BitsBreakdown",
    "Plan",
    "Prune",
    "Quant",
    "Recipe",
    "load_plan",
    "parse_recipe",
    "recipe_bits",
    "rows_and_inputs",
]
