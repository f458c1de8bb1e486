PYTHONPATH=src .venv/bin/python -m pvq reproduce toolbox --preset cpu --out results/cpu
# started 15:12 UTC alongside the full test suite on the shared 2 cores; wall 3007 s incl. 288 s pretraining
