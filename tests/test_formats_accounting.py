"""Equal-compression accounting against FP16, with optional mask/metadata overhead."""

from __future__ import annotations

import pytest

from pvq.formats import (
    NM,
    Dense,
    Unstructured,
    keep_ratio,
    keep_ratio_with_overhead,
    metadata_bits_per_weight,
    sparsity_for_bits,
    storage_bits_per_weight,
)


def test_paper_equal_compression() -> None:
    assert sparsity_for_bits(8) == 0.5 and sparsity_for_bits(4) == 0.75 and keep_ratio(2) == 0.125


def test_mask_overhead_is_6_25_percent_of_fp16() -> None:
    # theory_points.csv: 1 mask bit per FP16 weight = 6.25 %
    assert metadata_bits_per_weight(Unstructured(0.25)) / 16 * 100 == pytest.approx(6.25)
    assert storage_bits_per_weight(16, Unstructured(0.25)) == pytest.approx(5.0)
    assert storage_bits_per_weight(16, Unstructured(0.25), overhead=False) == pytest.approx(4.0)
    assert storage_bits_per_weight(4) == 4.0 and storage_bits_per_weight(4, Dense()) == 4.0


def test_nm_metadata() -> None:
    assert metadata_bits_per_weight(NM(2, 4)) == pytest.approx(3 / 4)  # ceil(log2 6) / 4
    assert metadata_bits_per_weight(NM(2, 4), "index") == pytest.approx(1.0)  # 2 x 2-bit index / 4
    assert metadata_bits_per_weight(NM(1, 4)) == pytest.approx(2 / 4)
    assert metadata_bits_per_weight(NM(4, 4)) == 0.0
    assert storage_bits_per_weight(16, NM(2, 4)) == pytest.approx(8.75)
    with pytest.raises(ValueError):
        NM(5, 4)
    with pytest.raises(ValueError):
        metadata_bits_per_weight(NM(2, 4), "bogus")


def test_keep_ratio_with_overhead() -> None:
    assert keep_ratio_with_overhead(4, overhead=False) == keep_ratio(4)
    assert keep_ratio_with_overhead(4) == pytest.approx(3 / 16)
    assert keep_ratio_with_overhead(1) == 0.0
    with pytest.raises(ValueError):
        keep_ratio_with_overhead(0)
    with pytest.raises(ValueError):
        Unstructured(1.5)


def test_channel_pattern() -> None:
    from pvq.formats import Channel

    assert metadata_bits_per_weight(Channel(0.5, 288)) == pytest.approx(1 / 288)
    assert storage_bits_per_weight(16, Channel(0.5, 288)) == pytest.approx(8 + 1 / 288)
    assert metadata_bits_per_weight(Channel(1.0, 288)) == 0.0
    with pytest.raises(ValueError):
        Channel(0.5, 0)
