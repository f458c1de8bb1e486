PYTHONPATH=src .venv/bin/python -m pvq reproduce toolbox --preset cpu --out results/cpu
# first run 15:12 UTC (3007 s incl. 288 s pretraining); rerun 17:12-18:31 UTC on the loaded 2 cores (load 11-17):
# the prune/N:M cells of the old sparsity grid were rerun (run keys now carry a config digest), the channel,
# App. H (2x epochs) and lsq_mixed cells added; the MobileNetV2 cells were run ahead by a side process calling
# the same toolbox._run_cells (log: toolbox_mbv2.log), then assembled by the command above.
