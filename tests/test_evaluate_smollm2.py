"""Held-out sanity of the evaluation on the real SmolLM2 (issue 13): the uncompressed perplexity on the first 1,024
held-out tokens is about 17.4, INT8 per channel stays within 1 % of it, and magnitude pruning at 75 % is worse than
every 4-bit quantization option. Runs ``scripts/smollm2_sanity.py``'s measurement (several minutes: slow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "smollm2_sanity.py"


def _measure():  # noqa: ANN202
    spec = importlib.util.spec_from_file_location("smollm2_sanity", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {r["recipe"]: r for r in mod.measure(log=lambda _msg: None)}


def test_smollm2_held_out_sanity() -> None:
    rows = _measure()
    base = rows["none"]
    assert base["n"] == 1020  # 1,024 tokens in windows of 256: 4 x 255 predicted tokens
    assert base["perplexity"] == pytest.approx(17.4, abs=0.2)
    assert base["kl"] == pytest.approx(0.0, abs=1e-6)
    assert abs(rows["int8:channel:rtn"]["perplexity"] / base["perplexity"] - 1) < 0.01
    four_bit = [r for name, r in rows.items() if name.startswith("int4:")]
    assert len(four_bit) >= 4
    pruned = rows["prune75:magnitude"]
    for r in four_bit:
        assert pruned["perplexity"] > r["perplexity"], r["recipe"]
        assert pruned["kl"] > r["kl"], r["recipe"]
