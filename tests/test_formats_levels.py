"""Format level sets: integer grids, minifloats, NormalFloat."""

from __future__ import annotations

import numpy as np
import pytest

from pvq.formats import (
    NF4_PUBLISHED,
    IntGrid,
    asymmetric,
    format_for_bits,
    get_format,
    list_formats,
    normalfloat_values,
)


@pytest.mark.parametrize("name", list_formats())
def test_every_format_is_sorted_finite_and_fits(name: str) -> None:
    fmt = get_format(name)
    lv = fmt.levels()
    assert lv.dtype == np.float64
    assert np.all(np.diff(lv) > 0) and np.all(np.isfinite(lv))
    assert len(lv) <= 2**fmt.bits
    assert fmt.max_level == np.max(np.abs(lv))


@pytest.mark.parametrize("bits", range(2, 9))
def test_int_symmetric_signed_matches_intgrid(bits: int) -> None:
    fmt = get_format(f"int{bits}")
    g = IntGrid(bits)
    np.testing.assert_array_equal(fmt.levels(), g.levels().astype(float))
    assert fmt.qmin == -(2 ** (bits - 1)) and fmt.qmax == 2 ** (bits - 1) - 1
    assert fmt.kind == "int" and fmt.bits == bits


def test_int_narrow_uint_asymmetric() -> None:
    np.testing.assert_array_equal(get_format("int4_narrow").levels(), np.arange(-7, 8))
    np.testing.assert_array_equal(get_format("uint4").levels(), np.arange(0, 16))
    np.testing.assert_array_equal(asymmetric(4, 3).levels(), np.arange(-3, 13))
    with pytest.raises(ValueError, match="zero_point"):
        asymmetric(4, 16)


def test_fp8_e4m3() -> None:
    fmt = get_format("fp8_e4m3")
    lv = fmt.levels()
    # 256 codes - 2 NaN codes = 254 finite codes; +0 and -0 are one value -> 253 distinct values.
    assert len(lv) == 253
    assert fmt.max_level == 448.0
    assert np.min(lv[lv > 0]) == 2.0**-9  # smallest subnormal
    assert 0.0 in lv and not np.any(np.isinf(lv))
    assert 240.0 in lv and 416.0 in lv and 464.0 not in lv


def test_fp8_e5m2() -> None:
    fmt = get_format("fp8_e5m2")
    lv = fmt.levels()
    # 256 codes - 8 inf/NaN codes (top exponent) = 248 finite codes, ±0 merged -> 247 values.
    assert len(lv) == 247
    assert fmt.max_level == 57344.0
    assert np.min(lv[lv > 0]) == 2.0**-16


def test_fp4_e2m1() -> None:
    lv = get_format("fp4_e2m1").levels()
    np.testing.assert_array_equal(lv[lv >= 0], [0, 0.5, 1, 1.5, 2, 3, 4, 6])
    np.testing.assert_array_equal(lv, np.unique(np.concatenate([-lv, lv])))
    assert len(lv) == 15


def test_nf4_published_and_construction() -> None:
    fmt = get_format("nf4")
    assert fmt.num_levels == 16 and fmt.kind == "nf"
    np.testing.assert_array_equal(fmt.levels(), np.array(NF4_PUBLISHED))
    assert fmt.levels()[0] == -1.0 and fmt.levels()[-1] == 1.0 and 0.0 in fmt.levels()
    # the QLoRA construction reproduces the published table
    np.testing.assert_allclose(normalfloat_values(4), NF4_PUBLISHED, atol=3e-7)


def test_quantize_rounds_to_nearest_level() -> None:
    fmt = get_format("fp4_e2m1")
    w = np.array([-100.0, -2.4, 0.2, 0.26, 2.6, 5.1, 100.0])
    np.testing.assert_array_equal(fmt.quantize(w, 1.0), [-6, -2, 0, 0.5, 3, 6, 6])
    np.testing.assert_array_equal(get_format("int4").quantize(w, 1.0), [-8, -2, 0, 0, 3, 5, 7])


def test_format_for_bits_and_bad_names() -> None:
    assert format_for_bits("fp", 8).name == "fp8"
    np.testing.assert_array_equal(format_for_bits("fp", 8).levels(), get_format("fp8_e4m3").levels())
    np.testing.assert_array_equal(format_for_bits("fp", 4).levels(), get_format("fp4_e2m1").levels())
    assert format_for_bits("nf4", 4).name == "nf4"
    for bad in ("int0", "int17", "fp9", "fp8_e4m4", "nf1", "bogus"):
        with pytest.raises(ValueError):
            get_format(bad)
    with pytest.raises(ValueError, match="family"):
        format_for_bits("posit", 8)
