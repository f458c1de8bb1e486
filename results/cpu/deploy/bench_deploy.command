# one run, from the repository root, 2026-11-30 18:46-18:54 UTC, on the 2-core machine (load average falling from ~9
# to ~1 as other jobs ended); defaults: --repeats 2 --warmup 1 --threads 1 --lm-batches 1,4; written to /tmp, copied here
PYTHONPATH=src python benchmarks/bench_deploy.py --models mobilenet_v2,efficientnet_lite0,minilm,smollm2 --out /tmp/dep/final
# ORT channel-layout investigation (channels50 slower than FP32 before round_to):
PYTHONPATH=src python benchmarks/bench_channels_layout.py
