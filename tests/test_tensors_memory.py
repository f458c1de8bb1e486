"""Memory of the per-tensor sweep (issue 18 D4): bounded bytes per weight; the compact (blocked) prefix
sums of large tensors give the same numbers as full ones."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

import pvq.tensors._sorted as sorted_mod
from pvq.tensors import SortedTensor, SweepConfig, int_levels, levels_sse, measure_tensor, optimal_scale


@pytest.mark.parametrize("range_search", ["optimal", "grid"])
def test_sweep_peak_memory_per_weight_is_bounded(range_search):
    n = 6_000_000  # above FULL_PREFIX_MAX: the compact layout
    x = (np.random.default_rng(0).standard_normal(n, dtype=np.float32) * 0.02).astype(np.float32)
    tracemalloc.start()
    try:
        rows = measure_tensor("w", x, SweepConfig(bits=(4, 8), range_search=range_search))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the input (4 B/weight) is allocated before tracing; the sorted float32 copy is 4 B/weight, the
    # rest bounded temporaries. Before: float64 copies and prefix sums, ~56 B/weight.
    assert peak / n <= 12.0, peak / n
    assert len(rows) == 2


def test_compact_prefix_sums_give_the_same_numbers(monkeypatch, rng):
    w = torch.tensor(rng.standard_t(3, 50_001) * 0.05, dtype=torch.float32)
    full = SortedTensor.from_tensor(w)
    monkeypatch.setattr(sorted_mod, "FULL_PREFIX_MAX", 1000)
    compact = SortedTensor.from_tensor(w)
    assert full.block == 1 and compact.block == sorted_mod.BLOCK
    assert compact.nbytes() < 0.3 * full.nbytes()
    idx = rng.integers(0, w.numel() + 1, 500)
    for a, b in zip(full.prefix(idx), compact.prefix(idx), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * full.energy)
    assert compact.energy == pytest.approx(full.energy, rel=1e-12)
    k = np.array([0, 1, 7, 25_000, 50_000, 50_001])
    np.testing.assert_allclose(compact.smallest_squares(k), full.smallest_squares(k), rtol=1e-10, atol=1e-300)
    mags = np.sort(np.abs(w.numpy().astype(np.float64)))
    np.testing.assert_allclose(full.smallest_squares(k), [np.dot(mags[:j], mags[:j]) for j in k], rtol=1e-10)
    for bits in (2, 5, 8):
        levels = int_levels(bits)
        scales = np.geomspace(1e-4, 0.1, 30)
        np.testing.assert_allclose(
            levels_sse(compact, scales, levels)[0], levels_sse(full, scales, levels)[0], rtol=1e-10
        )
        a, b = optimal_scale(full, levels), optimal_scale(compact, levels)
        assert a.certified and b.certified
        assert b.sse == pytest.approx(a.sse, rel=1e-10)


def test_count_below_is_exact_for_float64_thresholds():
    st = SortedTensor.from_tensor(np.array([-1.0, 0.1, 0.1, 0.5, 2.0], dtype=np.float32))
    v = float(np.float32(0.1))
    t = np.array([v, np.nextafter(v, 1.0), np.nextafter(v, -1.0), -np.inf, np.inf, 1e300, -1e300])
    assert st.count_below(t).tolist() == [1, 3, 1, 0, 5, 5, 0]
