"""Plans for :func:`pvq.apply.apply`: a :class:`~pvq.recipes.Plan` file, or the per-tensor choices ``pvq compare``
writes (``allocation.json``: one row per tensor with the chosen option's ``label``).

``pvq compare`` compares per-tensor options, so its labels map to per-tensor, calibration-free recipes:
``INT4`` -> ``int4:tensor:rtn``; ``FP8 E4M3``/``FP4 E2M1``/``NF4`` -> ``fp8``/``fp4``/``nf4:tensor:rtn``;
``prune 75%`` -> ``prune75:magnitude`` (a fractional sparsity such as ``prune 81.2%`` is rounded to the nearest
percent, the grammar's unit); ``2:4`` -> ``2:4:magnitude``; ``2:4 + INT6`` -> ``2:4:magnitude+int6:tensor:rtn``;
``prune 50% + INT4`` -> ``prune50:magnitude+int4:tensor:rtn``; ``FP16`` -> ``none``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pvq.errors import PvqInputError
from pvq.recipes import Plan, Recipe, parse_recipe

__all__ = ["label_recipe", "plan_from_allocation", "read_plan"]

_FLOAT_LABELS = {"FP8 E4M3": "fp8", "FP8": "fp8", "FP4 E2M1": "fp4", "FP4": "fp4", "NF4": "nf4"}


def _quant_label(label: str) -> str | None:
    s = label.strip().upper()
    if m := re.fullmatch(r"INT(\d)", s):
        return f"int{m.group(1)}:tensor:rtn"
    if s in _FLOAT_LABELS:
        return f"{_FLOAT_LABELS[s]}:tensor:rtn"
    return None


def _prune_label(label: str) -> str | None:
    s = label.strip().lower()
    if m := re.fullmatch(r"prune\s*(\d+(?:\.\d+)?)\s*%", s):
        return f"prune{round(float(m.group(1)))}:magnitude"
    if m := re.fullmatch(r"(\d+)\s*:\s*(\d+)", s):
        return f"{m.group(1)}:{m.group(2)}:magnitude"
    return None


def label_recipe(label: str) -> Recipe:
    """The recipe of a ``pvq compare`` option label (see the module docstring); PvqInputError if unknown."""
    text = str(label).strip()
    if text.upper() in ("FP16", "NONE"):
        return parse_recipe("none")
    parts = [p.strip() for p in text.split("+")]
    out: list[str] = []
    for p in parts:
        r = _prune_label(p) or _quant_label(p)
        if r is None:
            raise PvqInputError(
                f"plan: unknown option label {label!r} (expected INT4, prune 75%, 2:4, 2:4 + INT6, FP16)"
            )
        out.append(r)
    return parse_recipe("+".join(out))


def plan_from_allocation(rows: Iterable[Mapping[str, Any]], where: str = "allocation") -> Plan:
    """A plan from ``pvq compare``'s allocation rows (``name`` and ``label`` of each tensor's chosen option)."""
    recipes: dict[str, Recipe] = {}
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping) or "name" not in r or ("label" not in r and "recipe" not in r):
            raise PvqInputError(f"{where}: row {i} has no 'name' and 'label' (or 'recipe')")
        recipes[str(r["name"])] = (
            parse_recipe(str(r["recipe"])) if "recipe" in r else label_recipe(str(r["label"]))
        )
    if not recipes:
        raise PvqInputError(f"{where}: no tensors in the plan")
    return Plan(recipes)


def read_plan(path: str | Path) -> Plan:
    """Read ``--plan``: a Plan JSON (``{"recipes": {name: recipe}, "default": ...}``) or ``pvq compare``'s
    ``allocation.json`` (a list of rows). Missing, unreadable or malformed files raise PvqInputError."""
    from pvq.recipes._plan import read_plan_json

    p = Path(path)
    data = read_plan_json(p)
    if isinstance(data, list):
        return plan_from_allocation(data, where=f"--plan {p}")
    return Plan.from_json(data, where=f"--plan {p}")
