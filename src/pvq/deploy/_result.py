"""Deployment results: one row per (option, runtime, batch), with the DESIGN.md deploy keys first."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DeployResult", "DeployRow"]


@dataclass(frozen=True)
class DeployRow:
    """One deployment option measured at one batch size.

    DESIGN.md keys: ``model``, ``recipe`` (the option: ``fp32``, ``fp16``, ``int8-static``, ``int8-dynamic``,
    ``int8-weight``, ``channels50``, a pvq recipe such as ``prune50:magnitude``...), ``runtime``
    (``onnxruntime``/``torch``), ``batch``, ``bytes`` (the file the runtime loads: ONNX file, or safetensors for
    torch), ``latency_ms`` (median), ``latency_ratio`` (vs FP32 on the same runtime and batch, same run),
    ``metric``/``value`` (quality from :func:`pvq.evaluate.evaluate` on held-out data, vs the FP32 PyTorch model).

    Extra: ``checkpoint_bytes`` (pvq's compressed-tensors ``model.safetensors`` for recipe options),
    ``fp32_ms`` (FP32's median timed interleaved with this option: the ratio's denominator), ``peak_mb``
    (resident memory added while loading and running), ``q1_ms``/``q3_ms``/``repeats``, the quality's ``n`` and
    95 % interval, ``weights`` (nonzero conv/linear weights), ``check_max_abs``/``check_agreement``/``check_tol``
    (the exported model vs its PyTorch counterpart on evaluation inputs, done before timing), ``status``
    (``ok``/``skipped``) and ``note``.
    """

    model: str
    recipe: str
    runtime: str
    batch: int
    bytes: int | None
    latency_ms: float | None
    latency_ratio: float | None
    metric: str
    value: float | None
    checkpoint_bytes: int | None = None
    peak_mb: float | None = None
    fp32_ms: float | None = None
    q1_ms: float | None = None
    q3_ms: float | None = None
    repeats: int = 0
    n: int = 0
    ci_low: float | None = None
    ci_high: float | None = None
    weights: int | None = None
    check_max_abs: float | None = None
    check_agreement: float | None = None
    check_tol: str = ""
    status: str = "ok"
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


@dataclass(frozen=True)
class DeployResult:
    """Every row of one ``deploy`` run, plus the settings it ran with."""

    rows: tuple[DeployRow, ...]
    threads: int
    warmup: int
    repeats: int

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.rows]
