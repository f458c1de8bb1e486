.venv/bin/python -m pvq reproduce table1 --preset cpu --out results/cpu
