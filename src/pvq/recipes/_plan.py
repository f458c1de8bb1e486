"""A per-tensor plan: a recipe for each named weight tensor (what ``pvq compare`` recommends), as JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pvq.errors import PvqInputError
from pvq.recipes._recipe import Recipe, parse_recipe

__all__ = ["Plan", "load_plan", "read_plan_json"]


@dataclass(frozen=True)
class Plan:
    """``recipes`` maps a weight name (state-dict key, e.g. ``features.0.0.weight``) to its recipe; tensors
    not named get ``default`` (``none``: left uncompressed)."""

    recipes: Mapping[str, Recipe] = field(default_factory=dict)
    default: Recipe = field(default_factory=Recipe)

    def recipe_for(self, name: str) -> Recipe:
        return self.recipes.get(name, self.default)

    def to_json(self) -> dict[str, Any]:
        return {"default": str(self.default), "recipes": {k: str(v) for k, v in self.recipes.items()}}

    @classmethod
    def from_json(cls, data: Any, where: str = "plan") -> Plan:
        if not isinstance(data, Mapping) or not isinstance(data.get("recipes", {}), Mapping):
            raise PvqInputError(f"{where}: expected an object with 'recipes' (name -> recipe) and 'default'")
        recipes = {str(k): parse_recipe(v) for k, v in data.get("recipes", {}).items()}
        return cls(recipes, parse_recipe(data.get("default", "none")))


def read_plan_json(path: str | Path) -> Any:
    """The JSON content of a ``--plan`` file; PvqInputError for a missing or unreadable one."""
    p = Path(path)
    if not p.is_file():
        raise PvqInputError(f"--plan: no such file {p}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PvqInputError(f"--plan: {p} is not readable JSON ({exc})") from None


def load_plan(path: str | Path) -> Plan:
    """Read a plan file written by :meth:`Plan.to_json`; clear errors for missing or malformed files."""
    return Plan.from_json(read_plan_json(path), where=f"--plan {path}")
