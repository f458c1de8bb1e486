"""``pvq.compare(model_or_path, ...)``: the main job from Python, on a bundled model, a file or an ``nn.Module``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from pvq._defaults import COMPARE_LAYER_TIME_S
from pvq.compare._run import CompareConfig, CompareResult, run_compare
from pvq.errors import PvqInputError

__all__ = ["compare"]


def compare(
    model_or_path: str | os.PathLike[str] | nn.Module = "mobilenet_v2",
    *,
    bits: Sequence[int] | str = (2, 3, 4, 5, 6, 7, 8),
    budget: str | float = "4",
    calibration: Sequence[Any] | str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    layers: int = 2,
    chunks: int = 4,
    layer_time_s: float = COMPARE_LAYER_TIME_S,
    count_overhead: bool = True,
    evaluate: bool = False,
    arch: str | None = None,
    granularity: Sequence[str] | str | None = None,
    seed: int = 0,
    report: bool = True,
    log: Callable[[str], None] | None = None,
) -> CompareResult:
    """Prune or quantize? The whole ``pvq compare`` job, returned as a :class:`CompareResult`.

    ``model_or_path``: a bundled model name (``"mobilenet_v2"``, ``"efficientnet_lite0"``, ``"minilm"``,
    ``"smollm2"``), a weights file or Hugging Face folder (``pvq compare SOURCE``), or an ``nn.Module``.
    ``bits``: bit budgets 2..8 (a list, or ``"2-8"``). ``budget``: the size budget of the recommendation, in
    bits per weight (``4``), a share of FP16 (``"25%"``) or a size (``"1.5MB"``).
    ``calibration``: inputs for the layer-wise (output error) stage: a folder of images (``--data``), or, with an
    ``nn.Module``, a list of batches the module takes (``model(batch)``, or ``model(**batch)`` for a dict).
    An ``nn.Module`` without calibration inputs gets the per-tensor comparison and the recommendation only.
    ``out``: a folder for the results (resumable, as on the command line) and, with ``report``, the same
    ``index.html``, JSON and CSV files ``pvq compare`` writes; ``None``: a temporary folder, deleted afterwards.
    ``layers``/``chunks``/``layer_time_s``: the layer-wise sample (0 layers skips it) and its time budget (s).
    ``count_overhead``: charge pruning its mask and N:M its metadata (``False``: the paper's accounting).
    ``evaluate``: also run the command line's ``--eval`` stage (minutes; bundled models and ``--arch`` only).
    ``arch``: ``"package.module:factory"`` building the architecture a weights file fills (``--arch``).
    ``granularity``: quantization granularities compared with pruning at equal real bits (``--granularity``;
    ``None``: ``tensor,channel,g128``; ``""`` or ``()``: the paper's per-tensor comparison only).
    ``log``: receives one-line stage messages (default: none).

    Example::

        import pvq
        result = pvq.compare("mobilenet_v2", bits=[4, 8], layers=0)
        print(result.summary)            # per bit budget: wins per family, median SNRs (dB)
        print(result.allocation.rows())  # the recommended option per tensor under the budget
    """
    from pvq.cli._common import parse_bits

    bit_list = tuple(parse_bits(bits, lo=2, hi=8) if isinstance(bits, str) else (int(b) for b in bits))
    model = model_or_path if isinstance(model_or_path, nn.Module) else None
    if model is None and not isinstance(model_or_path, (str, os.PathLike)):
        raise PvqInputError(
            f"model_or_path: expected a bundled model name, a path or an nn.Module, got {type(model_or_path).__name__}"
        )
    data: str | None = None
    batches: Sequence[Any] | None = None
    if isinstance(calibration, (str, os.PathLike)):
        data = os.fspath(calibration)
        if not Path(data).is_dir():
            raise PvqInputError(f"calibration: {data} is not a folder of images")
    elif calibration is not None:
        if model is None:
            raise PvqInputError(
                "calibration: batches need an nn.Module; for a bundled model or a file give a folder of images"
            )
        batches = list(calibration)
        if not batches:
            raise PvqInputError("calibration: no batches given")
    source = os.fspath(model_or_path) if model is None else f"<{type(model).__name__}>"
    with tempfile.TemporaryDirectory(prefix="pvq-compare-") as tmp:
        out_dir = Path(out) if out is not None else Path(tmp)
        cfg = CompareConfig(
            source=source,
            bits=bit_list,
            out=out_dir,
            data=data,
            budget=str(budget),
            layers=layers,
            chunks=chunks,
            layer_time_s=layer_time_s,
            count_overhead=count_overhead,
            seed=seed,
            eval=evaluate,
            arch=arch,
            granularity=_granularity(granularity),
        )
        result = run_compare(cfg, log=log, model=model, calibration=batches)
        if out is not None and report:
            _write(result, out_dir)
    return result


def _granularity(g: Sequence[str] | str | None) -> tuple[str, ...]:
    from pvq.compare._run import DEFAULT_GRANULARITY

    if g is None:
        return tuple(DEFAULT_GRANULARITY)
    items = g.split(",") if isinstance(g, str) else list(g)
    return tuple(x.strip() for x in items if x.strip())


def _write(result: CompareResult, out_dir: Path) -> Path:
    """The files ``pvq compare`` writes (``config.json`` last, the commit marker); returns ``index.html``."""
    from pvq import __version__
    from pvq._outdir import open_output
    from pvq.compare._text import verdict_text
    from pvq.compare._write import write_config, write_outputs
    from pvq.report import write_compare_report

    with open_output(out_dir):
        verdict = verdict_text(result)
        files = write_outputs(result, out_dir, verdict, __version__)
        page = write_compare_report(result, verdict, out_dir, __version__, files)
        write_config(result, out_dir, __version__)
    return Path(page)
