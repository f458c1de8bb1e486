"""Benchmark: model loading. Both sides measured in this run, on the bundled files.

1. GGUF header: pvq's parser (``pvq.models._gguf_file.read_gguf``) vs ``gguf.GGUFReader`` on
   SmolLM2-135M (49k-token vocabulary in the metadata) -> speed-up ratio.
2. SmolLM2 weight set: time to open it and dequantize one Q4_1 tensor vs dequantizing all of them.

    .venv/bin/python benchmarks/bench_models.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys

from _timing import best_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from pvq.models import bundled_path, load_weights
    from pvq.models._gguf_file import read_gguf

    gguf_file = bundled_path("smollm2", required=False)
    if gguf_file is None:
        sys.exit("bundled models not installed (make install)")
    import gguf

    t_pvq = best_of(lambda: read_gguf(gguf_file), args.repeats)
    t_ref = best_of(lambda: gguf.GGUFReader(str(gguf_file), "r"), max(1, args.repeats // 3))
    print(
        f"GGUF header  pvq {t_pvq:8.3f} s   gguf.GGUFReader {t_ref:8.3f} s   speed-up x{t_ref / t_pvq:6.1f}"
    )

    def one_q4() -> None:
        ws = load_weights("smollm2")
        ws[next(iter(ws))]

    def all_q4() -> None:
        ws = load_weights("smollm2")
        for k in ws:
            ws[k]

    t_one = best_of(one_q4, args.repeats)
    t_all = best_of(all_q4, 1)
    print(
        f"SmolLM2 Q4_1 open+1 tensor {t_one:8.3f} s   all 210 tensors {t_all:8.3f} s   ratio x{t_all / t_one:6.1f}"
    )


if __name__ == "__main__":
    main()
