"""`pvq theory`: expected SNR of quantization vs pruning on a distribution (paper §3)."""

from __future__ import annotations

import math
import sys

import typer

from pvq.cli._common import check_positive, parse_bits, print_json_rows
from pvq.errors import PvqInputError


def register(app: typer.Typer) -> None:
    @app.command("theory")
    def theory(
        dist: str = typer.Option("gaussian", "--dist", help="gaussian | laplace | uniform | student-t"),
        nu: float = typer.Option(None, "--nu", help="student-t degrees of freedom (default 2)"),
        kurtosis: float = typer.Option(
            None, "--kurtosis", help="student-t: truncate where Pearson kurtosis = K"
        ),
        range_: float = typer.Option(None, "--range", help="student-t: truncation range R (default 10)"),
        bits: str = typer.Option("2-8", "--bits", help="bit-widths 2..8: a range 2-8 or a list 8,4,2"),
        fmt: str = typer.Option(
            "int",
            "--format",
            help="int | int-narrow | uint | fp | nf | nf4, or a format name (fp8_e5m2, ...)",
        ),
        mask_overhead: bool = typer.Option(
            False, "--mask-overhead", help="charge pruning 1 mask bit per weight"
        ),
        json_out: bool = typer.Option(False, "--json", help="print a JSON array of rows on stdout"),
    ) -> None:
        """Quantization (MSE-optimal scale) vs magnitude pruning at equal compression, computed exactly."""
        from pvq.theory import TheoryConfig, run_theory  # lazy: keeps `pvq --help` fast

        b = parse_bits(bits, lo=2, hi=8)
        # the ranges the exact integrals are accurate in (the kurtosis solver searches R in the same bracket);
        # beyond nu = 1e6 a student-t is a Gaussian to 1e-6: use --dist gaussian
        if nu is not None:
            check_positive(nu, "--nu", hi=1e6)
            if nu < 1e-3:
                raise PvqInputError(f"--nu: must be in [0.001, 1e6], got {nu:g}")
        if range_ is not None:
            check_positive(range_, "--range", hi=1e7)
            if range_ < 1e-3:
                raise PvqInputError(f"--range: must be in [0.001, 1e7], got {range_:g}")
        try:
            cfg = TheoryConfig(
                dist=dist.strip().lower(),
                nu=nu,
                R=range_,
                kurtosis=kurtosis,
                bits=tuple(b),
                format=fmt,
                mask_overhead=mask_overhead,
            )
            rows = run_theory(cfg)
        except ValueError as exc:
            raise PvqInputError(f"pvq theory: {exc}") from None
        if json_out:
            print_json_rows(rows)
            return
        first = rows[0]
        params = ", ".join(f"{k}={v:.6g}" for k, v in first["params"].items())
        print(f"{first['dist']}({params})  Pearson kurtosis {first['kurtosis']:.4g}")
        print(
            f"{'bits':>4} {'format':>10} {'sparsity':>8} {'quant_dB':>9} {'prune_dB':>9} {'clip':>9}  winner"
        )
        for r in rows:
            print(
                f"{r['bits']:>4} {r['format']:>10} {r['sparsity']:>8.4f} {_f(r['quant_snr_db'])} "
                f"{_f(r['prune_snr_db'])} {r['clip']:>9.4g}  {r['winner']}"
            )
        sys.stdout.flush()


def _f(x: float) -> str:
    return f"{x:>9.3f}" if math.isfinite(x) else f"{x!s:>9}"
