"""Compression formats: integer and float grids, sparsity patterns, equal-compression accounting."""

from pvq.formats._accounting import (
    NM,
    Channel,
    Dense,
    SparsityPattern,
    Unstructured,
    bits_for_keep_ratio,
    keep_ratio,
    keep_ratio_with_overhead,
    metadata_bits_per_weight,
    sparsity_for_bits,
    storage_bits_per_weight,
)
from pvq.formats._float import NF4_PUBLISHED, minifloat_values, normalfloat_values
from pvq.formats._format import (
    FORMAT_FAMILIES,
    MINIFLOAT_LAYOUTS,
    Format,
    asymmetric,
    format_for_bits,
    get_format,
    list_formats,
)
from pvq.formats._int import IntGrid, quantize
from pvq.formats._sparsity import nm_mask

__all__ = [
    "IntGrid",
    "quantize",
    "keep_ratio",
    "sparsity_for_bits",
    "bits_for_keep_ratio",
    "Format",
    "get_format",
    "format_for_bits",
    "list_formats",
    "asymmetric",
    "FORMAT_FAMILIES",
    "MINIFLOAT_LAYOUTS",
    "minifloat_values",
    "normalfloat_values",
    "NF4_PUBLISHED",
    "Dense",
    "Unstructured",
    "NM",
    "Channel",
    "SparsityPattern",
    "nm_mask",
    "metadata_bits_per_weight",
    "storage_bits_per_weight",
    "keep_ratio_with_overhead",
]
