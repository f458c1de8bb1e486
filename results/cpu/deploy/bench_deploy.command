# run from the repository root, on the shared 2-core machine (load average 9-15 from other jobs); defaults:
# --repeats 2 --warmup 1 --threads 1 --lm-batches 1,4; written to /tmp and copied here
# run A, 17:53 UTC (minilm measured in 521 s; the run then stopped on the smollm2 table's missing interval, since fixed):
PYTHONPATH=src python benchmarks/bench_deploy.py --models minilm,smollm2,mobilenet_v2,efficientnet_lite0 --out /tmp/dep/bench2
# run B, 18:13 UTC, 1330 s (smollm2 584 s, mobilenet_v2 ~240 s, efficientnet_lite0 504 s):
PYTHONPATH=src python benchmarks/bench_deploy.py --models smollm2,mobilenet_v2,efficientnet_lite0 --out /tmp/dep/bench3
# ORT channel-layout investigation (channels50 slower than FP32 before round_to):
PYTHONPATH=src python benchmarks/bench_channels_layout.py
