"""Fig. 4's whole-row panel alone, at the cpu preset's sizes (8 rows, 4 bits, 10 s per exact solve), for the
paper's two MobileNetV2 pointwise layers: what `pvq reproduce fig4 --preset cpu --whole-rows` adds to Fig. 4,
without its 19-minute chunked part. Prints the panel's notes (same code path as the reproduction).

    PYTHONPATH=src .venv/bin/python benchmarks/fig4_whole_panel.py
"""

from __future__ import annotations

import time

from pvq.experiments import ReproduceConfig
from pvq.experiments._fig4_whole import whole_row_note, whole_row_summary
from pvq.experiments.fig4 import OPT_DIM, PRESETS, _whole_rows
from pvq.layerwise import capture_layer_problems
from pvq.models import calibration_batches, create_model


def main() -> None:
    cfg = ReproduceConfig(preset="cpu", whole_rows=True)
    t0 = time.perf_counter()
    model = create_model("mobilenet_v2")
    batches = calibration_batches("mobilenet_v2", PRESETS["cpu"].batches, seed=cfg.seed)
    units = []
    for layer in ("features.8.conv.0.0", "features.11.conv.0.0"):
        # the chunked problems only give the chunk boundaries here
        probs = capture_layer_problems(
            model, layer, batches, opt_dim=OPT_DIM["mobilenet_v2"], bits=(4,), max_rows=1
        )
        units += _whole_rows(model, "mobilenet_v2", layer, batches, probs, cfg)
    for s in whole_row_summary(units):
        print(whole_row_note(s))
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
