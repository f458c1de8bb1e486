"""pvq: should I prune this model or quantize it, at which compression, and where?

Implements and extends "Pruning vs Quantization: Which is Better?" (Kuzmin, Nagel, van Baalen,
Behboodi, Blankevoort; NeurIPS 2023). See DESIGN.md for the module map.
"""

from pvq.errors import PvqError, PvqInputError

__version__ = "0.1.0"
__all__ = ["PvqError", "PvqInputError", "__version__"]
