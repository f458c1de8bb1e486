"""Theory (paper §3, App. A-B): expected quantization vs pruning error on distributions, computed not sampled."""

from pvq.theory._distributions import (
    DISTRIBUTIONS,
    Distribution,
    Gaussian,
    Laplace,
    TruncatedStudentT,
    Uniform,
    get_distribution,
    truncated_t_kurtosis,
    truncated_t_range_for_kurtosis,
)
from pvq.theory._errors import (
    QuantError,
    as_format,
    expected_prune_mse,
    expected_quant_mse,
    optimal_quant,
    optimal_quant_error,
    prune_threshold,
    quant_error,
    quant_mse_many,
)
from pvq.theory._rows import TheoryConfig, run_theory, theory_rows

__all__ = [
    "DISTRIBUTIONS",
    "Distribution",
    "Gaussian",
    "Laplace",
    "Uniform",
    "TruncatedStudentT",
    "get_distribution",
    "truncated_t_kurtosis",
    "truncated_t_range_for_kurtosis",
    "QuantError",
    "as_format",
    "quant_mse_many",
    "quant_error",
    "expected_quant_mse",
    "optimal_quant",
    "optimal_quant_error",
    "prune_threshold",
    "expected_prune_mse",
    "TheoryConfig",
    "theory_rows",
    "run_theory",
]
