"""pvq: should I prune this model or quantize it, at which compression, and where?

Implements and extends "Pruning vs Quantization: Which is Better?" (Kuzmin, Nagel, van Baalen,
Behboodi, Blankevoort; NeurIPS 2023). The main verbs, at the top level::

    import pvq
    result = pvq.compare("mobilenet_v2", bits=[4, 8])     # or a file, a Hugging Face folder, an nn.Module
    sweep = pvq.sweep(model, bits=range(2, 9))            # per-tensor SNR of quantization vs pruning
    compressed = pvq.apply(model, "int4:g128:gptq", batches)
    quality = pvq.evaluate(compressed.module, model, name="mobilenet_v2")

Each is imported on first use, so ``import pvq`` stays fast (torch is imported only then). See
``docs/api.md`` for the whole Python API.
"""

from pvq.errors import PvqError, PvqInputError

__version__ = "0.1.0"
__all__ = ["PvqError", "PvqInputError", "__version__", "apply", "compare", "evaluate", "sweep"]

# name -> (module, attribute or None for the module itself: a callable package)
_LAZY = {
    "apply": ("pvq.apply", None),  # pvq.apply(model, recipe, calibration) -> CompressedModel
    "compare": ("pvq.compare", None),  # pvq.compare(model_or_path, ...) -> CompareResult
    "evaluate": ("pvq.evaluate", None),  # pvq.evaluate(model, reference, name=...) -> EvalResult
    "sweep": ("pvq.tensors", "sweep"),  # pvq.sweep(weights, bits=...) -> SweepResult
}


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """The main verbs on first use (keeps ``import pvq`` fast: torch is imported only then)."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        obj = importlib.import_module(module)
        return obj if attr is None else getattr(obj, attr)
    raise AttributeError(f"module 'pvq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
