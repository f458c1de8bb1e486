# run from the repository root; 908 s on the shared 2-core machine (load average about 15 from other jobs)
PYTHONPATH=src python benchmarks/bench_deploy.py --models minilm,mobilenet_v2,efficientnet_lite0 --out results/cpu/deploy
# (written to /tmp/bench_deploy_out2 and copied here; defaults: --repeats 2 --warmup 1 --threads 1)
