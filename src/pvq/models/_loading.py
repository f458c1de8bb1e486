"""Strict state-dict loading that reports missing/unexpected keys (tied weights and derived buffers allowed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pvq.errors import PvqInputError

__all__ = ["KeyReport", "load_exact", "hf_construct"]


@dataclass(frozen=True)
class KeyReport:
    """Outcome of loading a state dict into a module: keys the module lacks or the file lacks."""

    missing: tuple[str, ...]  # in the module, not in the file (and not tied to a loaded tensor)
    unexpected: tuple[str, ...]  # in the file, not in the module
    derived: tuple[str, ...] = ()  # file keys that are non-persistent buffers of the module (checked equal)
    tied: tuple[str, ...] = ()  # module keys that share storage with a loaded key

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected


def load_exact(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> KeyReport:
    """Load ``state`` into ``module`` and return which keys did not match; PvqInputError if any did.

    A file key that is a non-persistent buffer of the module (e.g. BERT's ``position_ids``, which older
    ``transformers`` versions saved) is compared with the module's own value instead of loaded. A
    module key that shares storage with a loaded key (an LM head tied to the embedding) is satisfied.
    """
    own = module.state_dict(keep_vars=True)
    buffers = dict(module.named_buffers())
    derived = []
    to_load: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k not in own and k in buffers:
            if buffers[k].shape != v.shape or not torch.equal(buffers[k].to(v.dtype), v):
                raise PvqInputError(f"{source}: buffer '{k}' differs from the value the model derives")
            derived.append(k)
        else:
            to_load[k] = v
    for k, v in to_load.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            raise PvqInputError(
                f"{source}: '{k}' has shape {tuple(v.shape)}, the model expects {tuple(own[k].shape)}"
            )
    result = module.load_state_dict(to_load, strict=False)
    loaded_ptrs = {own[k].data_ptr() for k in to_load if k in own}
    tied = [k for k in result.missing_keys if own[k].data_ptr() in loaded_ptrs]
    missing = [k for k in result.missing_keys if k not in tied]
    report = KeyReport(tuple(missing), tuple(result.unexpected_keys), tuple(derived), tuple(tied))
    if not report.ok:
        what = (
            f"missing {list(report.missing)[:3]}"
            if report.missing
            else f"unexpected {list(report.unexpected)[:3]}"
        )
        raise PvqInputError(f"{source}: weights do not fit the architecture ({what})")
    return report


def hf_construct(cls: Any, config: Any, empty: bool) -> nn.Module:
    """``cls(config)``, skipping weight initialisation when ``empty`` (tied weights re-tied)."""
    if not empty:
        return cls(config)
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers
        return cls(config)
    with no_init_weights():
        model = cls(config)
    model.tie_weights()
    return model
