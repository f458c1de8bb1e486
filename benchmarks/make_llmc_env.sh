#!/usr/bin/env bash
# llm-compressor in its own virtual environment, for the reference side of benchmarks/bench_apply.py only.
# It pins heavy peers (its own transformers, compressed-tensors 0.19, accelerate, datasets) that pvq's environment
# must not take, so it never goes into .venv. CPU PyTorch 2.13.0 as everywhere (constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-benchmarks/.venv-llmc}
PY=${PY:-python3}
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q -c constraints.txt torch==2.13.0
"$VENV/bin/pip" install -q -c constraints.txt llmcompressor==0.14.0.1 transformers==5.17.0 compressed-tensors==0.19.0
"$VENV/bin/python" -c "import llmcompressor; print('llm-compressor', llmcompressor.__version__, 'in', '$VENV')"
