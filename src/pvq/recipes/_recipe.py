"""The recipe grammar: one string names how a weight tensor (or a whole model) is compressed.

Grammar (``str(parse_recipe(s))`` is the canonical spelling; parsing it again gives an equal object)::

    recipe   := "none" | step ("+" step)?            # pruning first, then quantization
    step     := quant | prune | nm
    quant    := FORMAT ":" GRANULARITY ":" ALGORITHM (":" key "=" value)*
    prune    := "prune" S ":" CRITERION (":" key "=" value)*      # S: sparsity in percent, 1..99
    nm       := N ":" M ":" CRITERION (":" key "=" value)*        # keep N of every M consecutive inputs

- FORMAT: ``int2``..``int8`` (symmetric, signed), ``uint2``..``uint8`` (asymmetric: unsigned codes and a zero
  point per group), ``fp8`` (E4M3), ``fp4`` (E2M1), ``nf4`` (QLoRA NormalFloat-4).
- GRANULARITY: ``tensor`` (one scale), ``channel`` (one scale per output row), ``gN`` (one scale per N
  consecutive inputs of a row; N in 2..4096, e.g. ``g32``, ``g64``, ``g128``).
- ALGORITHM: ``rtn`` (round to nearest with the MSE-optimal scale of each group; ``mse`` is read as ``rtn``),
  ``absmax`` (round to nearest with the max-magnitude scale), ``gptq`` (GPTQ sequential rounding with
  error feedback; options ``damp`` = dampening as a fraction of the mean Hessian diagonal, default 0.01,
  ``order`` = ``act`` (descending Hessian diagonal) or ``natural``, default ``act``).
- CRITERION: ``magnitude``, ``wanda`` (|w| times input-activation norm, per output row), ``sparsegpt``
  (SparseGPT with OBS error feedback; option ``damp``, default 0.01).

Examples: ``int8:channel:rtn``, ``int4:g128:gptq``, ``uint4:g32:rtn``, ``nf4:g64:rtn``, ``prune50:wanda``,
``2:4:sparsegpt``, ``prune50:sparsegpt+int4:g128:gptq``, ``int4:g128:gptq:order=natural:damp=0.1``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pvq.errors import PvqInputError

__all__ = [
    "GRAMMAR",
    "QUANT_FORMATS",
    "QUANT_ALGORITHMS",
    "PRUNE_CRITERIA",
    "Quant",
    "Prune",
    "Recipe",
    "parse_recipe",
]

GRAMMAR = (
    "recipe grammar: none | QUANT | PRUNE | PRUNE+QUANT; QUANT = FORMAT:GRANULARITY:ALGORITHM[:key=value...] "
    "with FORMAT int2..int8|uint2..uint8|fp8|fp4|nf4, GRANULARITY tensor|channel|g32|g64|g128|gN, "
    "ALGORITHM rtn|absmax|gptq (gptq options damp=0.01, order=act|natural); PRUNE = pruneS:CRITERION or "
    "N:M:CRITERION with S the sparsity in percent and CRITERION magnitude|wanda|sparsegpt "
    "(e.g. int4:g128:gptq, prune50:wanda, 2:4:sparsegpt, prune50:sparsegpt+int4:g128:gptq)"
)

QUANT_FORMATS = tuple(f"int{b}" for b in range(2, 9)) + tuple(f"uint{b}" for b in range(2, 9)) + ("fp8", "fp4", "nf4")
QUANT_ALGORITHMS = ("rtn", "absmax", "gptq")
PRUNE_CRITERIA = ("magnitude", "wanda", "sparsegpt")
_ALGORITHM_ALIASES = {"mse": "rtn"}
# options each algorithm/criterion accepts, with their defaults (canonical strings omit defaults)
_QUANT_OPTIONS: dict[str, dict[str, str]] = {"rtn": {}, "absmax": {}, "gptq": {"damp": "0.01", "order": "act"}}
_PRUNE_OPTIONS: dict[str, dict[str, str]] = {"magnitude": {}, "wanda": {}, "sparsegpt": {"damp": "0.01"}}


def _bad(text: str, why: str) -> PvqInputError:
    return PvqInputError(f"recipe {text!r}: {why}; {GRAMMAR}")


def _parse_options(text: str, parts: list[str], allowed: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    opts: dict[str, str] = {}
    for p in parts:
        key, sep, value = p.partition("=")
        if not sep or key not in allowed or not value:
            known = ", ".join(f"{k}=" for k in allowed) or "none"
            raise _bad(text, f"unknown option {p!r} (options here: {known})")
        opts[key] = value
    for key, value in opts.items():
        if key == "damp":
            try:
                d = float(value)
            except ValueError:
                raise _bad(text, f"damp must be a number, got {value!r}") from None
            if not 0.0 <= d < 10.0:
                raise _bad(text, f"damp must be in [0, 10), got {value!r}")
            opts[key] = repr(d) if repr(d) != allowed.get(key) else allowed[key]
        if key == "order" and value not in ("act", "natural"):
            raise _bad(text, f"order must be act or natural, got {value!r}")
    return tuple(sorted((k, v) for k, v in opts.items() if v != allowed.get(k)))


@dataclass(frozen=True)
class Quant:
    """Quantization step. ``group_size``: 0 = per tensor, -1 = per output channel, N > 0 = groups of N inputs."""

    format: str
    group_size: int
    algorithm: str
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.format not in QUANT_FORMATS:
            raise ValueError(f"Quant.format must be one of {QUANT_FORMATS}, got {self.format!r}")
        if self.algorithm not in QUANT_ALGORITHMS:
            raise ValueError(f"Quant.algorithm must be one of {QUANT_ALGORITHMS}, got {self.algorithm!r}")
        if not (self.group_size in (0, -1) or 2 <= self.group_size <= 4096):
            raise ValueError(f"Quant.group_size must be 0, -1 or 2..4096, got {self.group_size}")

    @property
    def bits(self) -> int:
        """Bits of one integer code."""
        return int(re.sub(r"\D", "", self.format))

    @property
    def asymmetric(self) -> bool:
        return self.format.startswith("uint")

    @property
    def granularity(self) -> str:
        return {0: "tensor", -1: "channel"}.get(self.group_size, f"g{self.group_size}")

    def option(self, key: str) -> str:
        """The option's value (its default when not given)."""
        return dict(self.options).get(key, _QUANT_OPTIONS[self.algorithm].get(key, ""))

    def __str__(self) -> str:
        return ":".join([self.format, self.granularity, self.algorithm] + [f"{k}={v}" for k, v in self.options])


@dataclass(frozen=True)
class Prune:
    """Pruning step: unstructured at ``sparsity`` (percent), or N:M (keep ``n`` of every ``m`` inputs)."""

    criterion: str
    sparsity: int = 0
    n: int = 0
    m: int = 0
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.criterion not in PRUNE_CRITERIA:
            raise ValueError(f"Prune.criterion must be one of {PRUNE_CRITERIA}, got {self.criterion!r}")
        if self.m:
            if not (1 <= self.n < self.m <= 64) or self.sparsity:
                raise ValueError(f"Prune: N:M needs 1 <= N < M <= 64 and no sparsity, got {self.n}:{self.m}")
        elif not 1 <= self.sparsity <= 99:
            raise ValueError(f"Prune.sparsity must be a percent in 1..99, got {self.sparsity}")

    @property
    def structured(self) -> bool:
        """N:M (semi-structured) rather than unstructured."""
        return self.m > 0

    @property
    def keep_ratio(self) -> float:
        return self.n / self.m if self.m else 1.0 - self.sparsity / 100.0

    def option(self, key: str) -> str:
        return dict(self.options).get(key, _PRUNE_OPTIONS[self.criterion].get(key, ""))

    def __str__(self) -> str:
        head = f"{self.n}:{self.m}" if self.m else f"prune{self.sparsity}"
        return ":".join([head, self.criterion] + [f"{k}={v}" for k, v in self.options])


@dataclass(frozen=True)
class Recipe:
    """At most one pruning step followed by at most one quantization step; both ``None`` = uncompressed."""

    prune: Prune | None = None
    quant: Quant | None = None
    text: str = field(default="", compare=False, repr=False)

    @property
    def is_none(self) -> bool:
        return self.prune is None and self.quant is None

    def __str__(self) -> str:
        parts = [str(s) for s in (self.prune, self.quant) if s is not None]
        return "+".join(parts) if parts else "none"


def _parse_quant(text: str, parts: list[str]) -> Quant:
    fmt, gran, algo = parts[0], parts[1], _ALGORITHM_ALIASES.get(parts[2], parts[2])
    if fmt not in QUANT_FORMATS:
        raise _bad(text, f"unknown format {fmt!r}")
    if gran == "tensor":
        group = 0
    elif gran == "channel":
        group = -1
    elif (m := re.fullmatch(r"g(\d+)", gran)) and 2 <= int(m.group(1)) <= 4096:
        group = int(m.group(1))
    else:
        raise _bad(text, f"unknown granularity {gran!r} (tensor, channel or gN with N in 2..4096)")
    if algo not in QUANT_ALGORITHMS:
        raise _bad(text, f"unknown algorithm {parts[2]!r}")
    return Quant(fmt, group, algo, _parse_options(text, parts[3:], _QUANT_OPTIONS[algo]))


def _parse_prune(text: str, head: str, parts: list[str]) -> Prune:
    if not parts:
        raise _bad(text, f"pruning step {head!r} needs a criterion")
    crit, rest = parts[0], parts[1:]
    if crit not in PRUNE_CRITERIA:
        raise _bad(text, f"unknown pruning criterion {crit!r}")
    opts = _parse_options(text, rest, _PRUNE_OPTIONS[crit])
    if m := re.fullmatch(r"prune(\d+)", head):
        s = int(m.group(1))
        if not 1 <= s <= 99:
            raise _bad(text, f"sparsity must be a percent in 1..99, got {s}")
        return Prune(crit, sparsity=s, options=opts)
    n, m_ = (int(x) for x in head.split(":"))
    if not 1 <= n < m_ <= 64:
        raise _bad(text, f"N:M needs 1 <= N < M <= 64, got {n}:{m_}")
    return Prune(crit, n=n, m=m_, options=opts)


def _parse_step(text: str, step: str) -> Quant | Prune:
    parts = step.split(":")
    if parts[0].startswith("prune"):
        return _parse_prune(text, parts[0], parts[1:])
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return _parse_prune(text, f"{parts[0]}:{parts[1]}", parts[2:])
    if len(parts) < 3:
        raise _bad(text, f"step {step!r} is neither FORMAT:GRANULARITY:ALGORITHM nor a pruning step")
    return _parse_quant(text, parts)


def parse_recipe(text: str | Recipe) -> Recipe:
    """Parse a recipe string (see the module docstring); raises :class:`PvqInputError` with the grammar."""
    if isinstance(text, Recipe):
        return text
    s = str(text).strip().lower()
    if s in ("none", "fp16", ""):
        if s == "":
            raise _bad(str(text), "empty recipe")
        return Recipe(text=s)
    steps = [_parse_step(s, p.strip()) for p in s.split("+")]
    prunes = [p for p in steps if isinstance(p, Prune)]
    quants = [q for q in steps if isinstance(q, Quant)]
    if len(prunes) > 1 or len(quants) > 1:
        raise _bad(s, "at most one pruning and one quantization step")
    if len(steps) == 2 and not isinstance(steps[0], Prune):
        raise _bad(s, "pruning comes first in a combined recipe")
    return Recipe(prunes[0] if prunes else None, quants[0] if quants else None, text=s)
