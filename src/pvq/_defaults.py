"""Defaults shared by the library and the CLI, defined once here (this module imports nothing, so the CLI
can read them without loading the library)."""

from __future__ import annotations

__all__ = ["COMPARE_LAYER_TIME_S"]

# time budget (s) of `pvq compare`'s layer-wise stage (CompareConfig.layer_time_s, --layer-time)
COMPARE_LAYER_TIME_S = 90.0
