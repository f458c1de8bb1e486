"""pvq: should I prune this model or quantize it, at which compression, and where?

Implements and extends "Pruning vs Quantization: Which is Better?" (Kuzmin, Nagel, van Baalen,
Behboodi, Blankevoort; NeurIPS 2023). See DESIGN.md for the module map.
"""

from pvq.errors import PvqError, PvqInputError

__version__ = "0.1.0"
__all__ = ["PvqError", "PvqInputError", "__version__", "apply"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """``pvq.apply`` on first use (keeps ``import pvq`` fast: torch is imported only then)."""
    if name == "apply":
        import importlib

        return importlib.import_module("pvq.apply")
    raise AttributeError(f"module 'pvq' has no attribute {name!r}")
