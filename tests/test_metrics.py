from __future__ import annotations

import math

import numpy as np

from pvq.formats import IntGrid, keep_ratio, quantize, sparsity_for_bits
from pvq.metrics import mse, snr_db


def test_snr_db_conventions() -> None:
    assert snr_db(1.0, 0.1) == 10.0
    assert snr_db(1.0, 0.0) == math.inf
    assert math.isnan(snr_db(0.0, 0.0))


def test_mse_matches_numpy(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=100), rng.normal(size=100)
    assert math.isclose(mse(a, b), float(np.mean((a - b) ** 2)))


def test_equal_compression() -> None:
    assert sparsity_for_bits(8) == 0.5
    assert sparsity_for_bits(4) == 0.75
    assert keep_ratio(2) == 0.125


def test_int_grid_and_uniform_rounding_error(rng: np.random.Generator) -> None:
    g = IntGrid(4)
    assert (g.qmin, g.qmax) == (-8, 7)
    # Inside the grid, rounding error of a uniform input is Delta^2 / 12.
    delta = 0.1
    w = rng.uniform(-0.7, 0.6, size=200_000)
    err = mse(w, quantize(w, delta, g.qmin, g.qmax))
    assert abs(err / (delta**2 / 12) - 1) < 0.02
