"""N:M masks."""

from __future__ import annotations

import numpy as np
import pytest

from pvq.formats import nm_mask


def test_nm_mask_keeps_n_largest_per_group(rng: np.random.Generator) -> None:
    w = rng.standard_normal((6, 16))
    mask = nm_mask(w, 2, 4)
    assert mask.shape == w.shape and mask.dtype == bool
    groups = mask.reshape(6, 4, 4)
    assert np.all(groups.sum(-1) == 2)
    a = np.abs(w).reshape(6, 4, 4)
    kept_min = np.where(groups, a, np.inf).min(-1)
    dropped_max = np.where(groups, -np.inf, a).max(-1)
    assert np.all(kept_min >= dropped_max)


def test_nm_mask_axis_and_ties() -> None:
    w = np.array([[1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_array_equal(nm_mask(w, 2, 4), [[True, True, False, False]])
    w = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(nm_mask(w, 1, 4, axis=0), [[0, 0], [0, 0], [0, 0], [1, 1]])


@pytest.mark.parametrize(
    "w,n,m",
    [
        (np.ones(6), 2, 4),
        (np.ones(8), 5, 4),
        (np.ones(8), 0, 4),
        (np.array([np.nan] * 4), 2, 4),
        (np.ones(0), 1, 4),
    ],
)
def test_nm_mask_bad_input(w: np.ndarray, n: int, m: int) -> None:
    with pytest.raises(ValueError, match="nm_mask"):
        nm_mask(w, n, m)
