"""Zero-mean symmetric weight distributions with closed-form partial moments.

Every distribution here is symmetric about 0, so the quantities the theory needs reduce to the
one-sided partial moments ``M_k(x) = ∫_0^x w^k p(w) dw`` (k = 0, 1, 2, 4), taken with a sign for
``x < 0`` (``M_k(-x) = (-1)^(k+1) M_k(x)``) so that ``∫_a^b w^k p(w) dw = M_k(b) - M_k(a)`` for any a < b.
Closed forms: Gaussian (erf), Laplace (exponentials), uniform (polynomials), truncated Student-t
(regularised incomplete beta for ν > k, Gauss hypergeometric 2F1 otherwise; paper App. B).
:meth:`Distribution.partial_moment_quad` is the adaptive-quadrature reference the tests compare with.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import beta as beta_fn
from scipy.special import betainc, erf, erfinv, gammainc, hyp2f1, stdtr, stdtrit

__all__ = [
    "Distribution",
    "Gaussian",
    "Laplace",
    "Uniform",
    "TruncatedStudentT",
    "get_distribution",
    "DISTRIBUTIONS",
    "truncated_t_kurtosis",
    "truncated_t_range_for_kurtosis",
]

DISTRIBUTIONS = ("gaussian", "laplace", "uniform", "student-t")
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


class Distribution(ABC):
    """A zero-mean distribution symmetric about 0 on the support ``[-hi, hi]`` (``hi`` may be inf)."""

    name: str = ""

    @property
    @abstractmethod
    def hi(self) -> float:
        """Upper end of the support (``inf`` for unbounded)."""

    @property
    def lo(self) -> float:
        return -self.hi

    @abstractmethod
    def pdf(self, x: Any) -> np.ndarray:
        """Density at ``x`` (any shape)."""

    @abstractmethod
    def _pm_pos(self, k: int, x: np.ndarray) -> np.ndarray:
        """``∫_0^x w^k p(w) dw`` for ``0 <= x <= hi`` (x may be inf when hi is)."""

    @abstractmethod
    def _quantile_upper(self, p: np.ndarray) -> np.ndarray:
        """Quantile for ``1/2 <= p <= 1`` (non-negative result)."""

    @abstractmethod
    def params(self) -> dict[str, float]:
        """The parameters, for reports (JSON-able)."""

    def partial_moment(self, k: int, x: Any) -> np.ndarray:
        """Signed one-sided partial moment ``M_k(x) = ∫_0^x w^k p(w) dw`` (x any shape, clipped to the support)."""
        x = np.asarray(x, dtype=np.float64)
        ax = np.minimum(np.abs(x), self.hi)
        val = self._pm_pos(k, ax)
        sign = np.where(x < 0, -1.0 if k % 2 == 0 else 1.0, 1.0)
        return sign * val

    def partial_moment_quad(self, k: int, x: float) -> float:
        """Reference ``∫_0^x w^k p(w) dw`` by adaptive quadrature (scipy.integrate.quad), for tests."""
        from scipy import integrate  # lazy: only the tests' reference needs it

        ax = min(abs(float(x)), self.hi)
        f = lambda w: w**k * float(self.pdf(w))  # noqa: E731
        pts = [p for p in (1.0, 3.0, 10.0, 30.0, 100.0, 1000.0) if p < ax]
        if math.isinf(ax):
            val = integrate.quad(f, 0.0, np.inf, epsabs=0.0, epsrel=1e-12, limit=500)[0]
        else:
            val = integrate.quad(f, 0.0, ax, points=pts or None, epsabs=0.0, epsrel=1e-12, limit=500)[0]
        return -val if (x < 0 and k % 2 == 0) else val

    def cdf(self, x: Any) -> np.ndarray:
        """``P(W <= x)``."""
        return 0.5 + self.partial_moment(0, x)

    def quantile(self, p: Any) -> np.ndarray:
        """Inverse CDF for ``p`` in [0, 1] (any shape)."""
        p = np.asarray(p, dtype=np.float64)
        if np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
            raise ValueError("quantile: probabilities must be in [0, 1]")
        up = self._quantile_upper(np.maximum(p, 1.0 - p))
        return np.where(p < 0.5, -up, up)

    def moment(self, k: int) -> float:
        """Raw moment ``E[W^k]`` (0 for odd k)."""
        if k % 2 == 1:
            return 0.0
        return float(2.0 * self._pm_pos(k, np.asarray(self.hi)))

    def mean(self) -> float:
        return 0.0

    def variance(self) -> float:
        """``E[W^2]`` (the mean is 0): the signal power of the SNR."""
        return self.moment(2)

    def kurtosis(self) -> float:
        """Pearson kurtosis ``E[W^4] / E[W^2]^2`` (normal = 3)."""
        return self.moment(4) / self.moment(2) ** 2

    def describe(self) -> str:
        ps = ", ".join(f"{k}={v:g}" for k, v in self.params().items())
        return f"{self.name}({ps})"


@dataclass(frozen=True)
class Gaussian(Distribution):
    """Normal ``N(0, sigma^2)``. Kurtosis 3."""

    sigma: float = 1.0
    name = "gaussian"

    def __post_init__(self) -> None:
        _check_positive("sigma", self.sigma)

    @property
    def hi(self) -> float:
        return math.inf

    def params(self) -> dict[str, float]:
        return {"sigma": self.sigma}

    def pdf(self, x: Any) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) / self.sigma
        return np.exp(-0.5 * z * z) / (_SQRT2PI * self.sigma)

    def _pm_pos(self, k: int, x: np.ndarray) -> np.ndarray:
        s = self.sigma
        z = np.asarray(x, dtype=np.float64) / s
        half_erf = 0.5 * erf(z / _SQRT2)  # ∫_0^z φ
        with np.errstate(invalid="ignore", over="ignore"):
            phi = np.exp(-0.5 * z * z) / _SQRT2PI
            z_phi = np.where(np.isfinite(z), z * phi, 0.0)
        if k == 0:
            return half_erf
        if k == 1:
            return s * (-np.expm1(-0.5 * z * z)) / _SQRT2PI
        if k == 2:
            return s**2 * (half_erf - z_phi)
        if k == 4:  # ∫ z^4 φ = 3 ∫ z^2 φ - z^3 φ
            with np.errstate(invalid="ignore", over="ignore"):
                z3_phi = np.where(np.isfinite(z), z**3 * phi, 0.0)
            return s**4 * (3.0 * (half_erf - z_phi) - z3_phi)
        raise ValueError(f"partial moment k={k} not available")

    def _quantile_upper(self, p: np.ndarray) -> np.ndarray:
        return self.sigma * _SQRT2 * erfinv(2.0 * p - 1.0)

    def moment(self, k: int) -> float:
        return (
            {0: 1.0, 2: self.sigma**2, 4: 3.0 * self.sigma**4}.get(k, super().moment(k))
            if k % 2 == 0
            else 0.0
        )


@dataclass(frozen=True)
class Laplace(Distribution):
    """Laplace with scale ``b``: ``p(w) = exp(-|w|/b) / (2b)``. Variance 2b², kurtosis 6."""

    b: float = 1.0
    name = "laplace"

    def __post_init__(self) -> None:
        _check_positive("b", self.b)

    @property
    def hi(self) -> float:
        return math.inf

    def params(self) -> dict[str, float]:
        return {"b": self.b}

    def pdf(self, x: Any) -> np.ndarray:
        return np.exp(-np.abs(np.asarray(x, dtype=np.float64)) / self.b) / (2.0 * self.b)

    def _pm_pos(self, k: int, x: np.ndarray) -> np.ndarray:
        # ∫_0^x w^k e^{-w/b} / (2b) dw = b^k k! / 2 · P(k + 1, x / b)  (regularised lower incomplete gamma)
        y = np.asarray(x, dtype=np.float64) / self.b
        return 0.5 * self.b**k * math.factorial(k) * gammainc(k + 1, y)

    def _quantile_upper(self, p: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return -self.b * np.log(2.0 * (1.0 - p))


@dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform on ``[-a, a]``. Variance a²/3, kurtosis 1.8."""

    a: float = 1.0
    name = "uniform"

    def __post_init__(self) -> None:
        _check_positive("a", self.a)

    @property
    def hi(self) -> float:
        return float(self.a)

    def params(self) -> dict[str, float]:
        return {"a": self.a}

    def pdf(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.where(np.abs(x) <= self.a, 0.5 / self.a, 0.0)

    def _pm_pos(self, k: int, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) ** (k + 1) / ((k + 1) * 2.0 * self.a)

    def _quantile_upper(self, p: np.ndarray) -> np.ndarray:
        return self.a * (2.0 * p - 1.0)


@dataclass(frozen=True)
class TruncatedStudentT(Distribution):
    """Standard Student-t with ``nu`` > 0 degrees of freedom truncated to ``[-R, R]`` (paper App. B).

    ``p(w) = t_ν(w) / (2 F_ν(R) - 1)`` on ``|w| <= R``. Partial moments:
    ``∫_0^x w^k t_ν(w) dw = ν^{k/2} / (2 B(1/2, ν/2)) · B(u; (k+1)/2, (ν-k)/2)``, ``u = x² / (ν + x²)``,
    with the incomplete beta ``B(u; a, c) = u^a / a · 2F1(a, 1 - c; a + 1; u)`` (valid for c <= 0 too).
    """

    nu: float = 2.0
    R: float = 10.0
    name = "student-t"

    def __post_init__(self) -> None:
        _check_positive("nu", self.nu)
        _check_positive("R", self.R)

    @property
    def hi(self) -> float:
        return float(self.R)

    def params(self) -> dict[str, float]:
        return {"nu": self.nu, "R": self.R}

    @property
    def _z(self) -> float:
        """Normaliser ``2 F_ν(R) - 1`` (computed from the upper tail for precision)."""
        return float(1.0 - 2.0 * stdtr(self.nu, -self.R))

    def pdf(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        nu = self.nu
        c = 1.0 / (math.sqrt(nu) * beta_fn(0.5, nu / 2.0))
        dens = c * (1.0 + x * x / nu) ** (-(nu + 1.0) / 2.0) / self._z
        return np.where(np.abs(x) <= self.R, dens, 0.0)

    def _pm_pos(self, k: int, x: np.ndarray) -> np.ndarray:
        return _t_pm_pos(self.nu, k, np.asarray(x, dtype=np.float64)) / self._z

    def _quantile_upper(self, p: np.ndarray) -> np.ndarray:
        # P(|W| <= q) = 2p - 1 -> F_ν(q) = 1/2 + (2p - 1) Z / 2
        return stdtrit(self.nu, 0.5 + (p - 0.5) * self._z)


def _t_pm_pos(nu: float, k: int, x: np.ndarray) -> np.ndarray:
    """``∫_0^x w^k t_ν(w) dw`` for x >= 0 (untruncated standard t), closed form."""
    if k == 0:
        return stdtr(nu, x) - 0.5
    if k == 1:
        c = 1.0 / (math.sqrt(nu) * beta_fn(0.5, nu / 2.0))
        if abs(nu - 1.0) < 1e-12:
            return c * 0.5 * nu * np.log1p(x * x / nu)
        # ∫ w (1 + w²/ν)^{-(ν+1)/2} = ν/(ν-1) (1 - (1 + x²/ν)^{(1-ν)/2})
        return c * nu / (nu - 1.0) * -np.expm1((1.0 - nu) / 2.0 * np.log1p(x * x / nu))
    if k == 2 and nu == 2.0:  # elementary for the paper's nu = 2: asinh(x/√2) - x/√(2 + x²)
        return np.arcsinh(x / _SQRT2) - x / np.sqrt(2.0 + x * x)
    a, c_par = (k + 1) / 2.0, (nu - k) / 2.0
    u = x * x / (nu + x * x)
    pref = nu ** (k / 2.0) / (2.0 * beta_fn(0.5, nu / 2.0))
    if c_par > 0:
        inc = betainc(a, c_par, u) * beta_fn(a, c_par)
    else:
        inc = u**a / a * hyp2f1(a, 1.0 - c_par, a + 1.0, u)
    return pref * inc


def truncated_t_kurtosis(nu: float, R: float | np.ndarray) -> np.ndarray:
    """Pearson kurtosis of the t_ν truncated to [-R, R] (vectorised over R; paper Fig. 6)."""
    R = np.asarray(R, dtype=np.float64)
    m2 = _t_pm_pos(nu, 2, R)
    m4 = _t_pm_pos(nu, 4, R)
    z = 2.0 * (stdtr(nu, R) - 0.5)
    # E[W^2] = 2 m2 / z, E[W^4] = 2 m4 / z -> kurt = m4 z / (2 m2²)
    return m4 * z / (2.0 * m2 * m2)


def truncated_t_range_for_kurtosis(nu: float, kurtosis: float) -> float:
    """The truncation range R at which the truncated t_ν has Pearson kurtosis ``kurtosis``.

    Kurtosis rises from 1.8 (R -> 0, uniform) to 3 + 6/(ν - 4) (ν > 4) or infinity (ν <= 4).
    Raises ``ValueError`` (naming the reachable interval) outside that range.
    """
    _check_positive("nu", nu)
    k_lo = 1.8
    k_hi = 3.0 + 6.0 / (nu - 4.0) if nu > 4 else math.inf
    if not k_lo < kurtosis < k_hi:
        raise ValueError(
            f"kurtosis {kurtosis:g} is not reachable by a t(nu={nu:g}) truncated to [-R, R]: "
            f"it must lie in ({k_lo:g}, {k_hi:g})"
        )
    logs = np.linspace(-3.0, 7.0, 201)
    ks = truncated_t_kurtosis(nu, 10.0**logs)
    above = np.nonzero(ks >= kurtosis)[0]
    if above.size == 0 or above[0] == 0:
        raise ValueError(f"kurtosis {kurtosis:g} needs R outside [1e-3, 1e7] for nu={nu:g}")
    i = int(above[0])
    from scipy import optimize  # lazy: keeps `pvq theory` start-up short

    f = lambda lr: float(truncated_t_kurtosis(nu, 10.0**lr)) - kurtosis  # noqa: E731
    return float(10.0 ** optimize.brentq(f, logs[i - 1], logs[i], xtol=1e-14, rtol=1e-13))


def get_distribution(name: str, **params: float | None) -> Distribution:
    """Build a distribution by name: ``gaussian`` (sigma), ``laplace`` (b), ``uniform`` (a),
    ``student-t`` (nu, and R or kurtosis). ``None`` parameters take the defaults.

    Raises ``ValueError`` naming the parameter on bad values.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key in ("t", "studentt", "student"):
        key = "student-t"
    p = {k: v for k, v in params.items() if v is not None}
    allowed = {
        "gaussian": {"sigma"},
        "laplace": {"b"},
        "uniform": {"a"},
        "student-t": {"nu", "R", "kurtosis"},
    }
    if key not in allowed:
        raise ValueError(f"unknown distribution {name!r}; known: {', '.join(DISTRIBUTIONS)}")
    extra = set(p) - allowed[key]
    if extra:
        raise ValueError(f"distribution {key} takes no parameter(s) {sorted(extra)}")
    if key == "gaussian":
        return Gaussian(**p)  # type: ignore[arg-type]
    if key == "laplace":
        return Laplace(**p)  # type: ignore[arg-type]
    if key == "uniform":
        return Uniform(**p)  # type: ignore[arg-type]
    nu = float(p.get("nu", 2.0))
    _check_positive("nu", nu)
    if "R" in p and "kurtosis" in p:
        raise ValueError("student-t: give the range R or the kurtosis, not both")
    if "kurtosis" in p:
        return TruncatedStudentT(nu=nu, R=truncated_t_range_for_kurtosis(nu, float(p["kurtosis"])))  # type: ignore[arg-type]
    return TruncatedStudentT(nu=nu, R=float(p.get("R", 10.0)))  # type: ignore[arg-type]


def _check_positive(arg: str, value: float) -> None:
    if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{arg} must be a positive finite number, got {value!r}")
