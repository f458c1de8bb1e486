"""Registry of paper reproductions. Each is ``fn(config) -> Result`` (Result has ``to_json()`` and ``plot()``).

Register with ``@register("fig1")`` in a module of this package; modules are discovered on first use,
so adding an experiment never edits this file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from pvq.experiments._base import PRESETS, ReproduceConfig, Result, SimpleResult

__all__ = ["register", "get", "names", "ReproduceConfig", "Result", "SimpleResult", "PRESETS"]

_REGISTRY: dict[str, Callable[..., Any]] = {}
_LOADED = False


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"experiment '{name}' registered twice")
        _REGISTRY[name] = fn
        return fn

    return deco


def _discover() -> None:
    global _LOADED
    if _LOADED:
        return
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        importlib.import_module(f"{__name__}.{info.name}")
    _LOADED = True


def names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def get(name: str) -> Callable[..., Any]:
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown experiment '{name}'; known: {', '.join(sorted(_REGISTRY)) or 'none'}") from None
