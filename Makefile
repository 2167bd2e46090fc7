# Linear Quantization, hands-on: developer commands.
#   make lab    - create .venv if needed, then open JupyterLab on the index notebook
#   make test   - create/refresh .venv if needed, then run pytest (tests/ and notebooks/)
#   Add TORCH_INDEX=https://download.pytorch.org/whl/cpu to install PyTorch's CPU-only build.
# Everything runs from the repo root with the project venv in .venv/.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.11 is the supported version; fall back to python3 if python3.11 is absent.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Re-installs whenever requirements.txt or pyproject.toml is newer than this stamp.
STAMP := $(VENV)/.requirements-installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: help venv lab test lint format record bench clean

help:
	@echo "make venv    create .venv and install requirements.txt (pinned, CPU torch)"
	@echo "make lab     open JupyterLab on notebooks/00_index.ipynb"
	@echo "make test    run the tests and re-run every notebook against its stored outputs"
	@echo "make lint    ruff format --check . and ruff check ."
	@echo "make format  ruff format . and ruff check --fix ."
	@echo "make record  re-execute every notebook in place (refresh stored outputs)"
	@echo "make bench   run the benchmarks in benchmarks/"
	@echo "make clean   remove .venv and caches"

venv: $(STAMP)

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "error: neither python3.11 nor python3 found" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# TORCH_INDEX (optional): a wheel index to take torch from before the requirements, e.g.
#   make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu
# On Linux, PyPI's torch is the CUDA build (about 2.8 GB to download); that index has the
# CPU-only build (about 190 MB). CI and the tests never set it.
TORCH_INDEX ?=

$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --index-url $(TORCH_INDEX) \
		"$$(grep -E '^torch==' requirements.txt)")
	$(BIN)/python -m pip install -r requirements.txt
	touch $@

# Jupyter refuses to start as root unless told to (as on the project's machines).
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

# root_dir=. keeps the repository root in the file browser (helper.py, the README); without
# it, naming a notebook makes its folder the root.
lab: venv
	$(BIN)/jupyter lab --ServerApp.root_dir=. notebooks/00_index.ipynb $(LAB_ARGS)

# The venv's bin/ goes first on PATH so that anything a test starts by name
# (jupyter, python) comes from the project venv.
# Then the notebooks once more on PyTorch's scalar code paths (ATEN_CPU_CAPABILITY=default):
# seeded float32 random numbers differ in their last bits between vector units, so this
# catches stored outputs that would not match on a learner's different CPU.
test: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)
	PATH="$(CURDIR)/$(BIN):$$PATH" ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest \
		notebooks $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-executes every notebook in place (each runs with cwd notebooks/). No timing
# metadata is recorded, and cell metadata is cleared except "tags" (nbval tags) and
# "jupyter" (source_hidden...), so a re-record only changes what really changed.
# Stored widget views are removed afterwards (see .ci/clear_widget_outputs.py).
record: venv
	@test -n "$(NOTEBOOKS)" || { echo "error: no notebooks/*.ipynb" >&2; exit 1; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.record_timing=False \
		--ExecutePreprocessor.store_widget_state=False \
		--ClearMetadataPreprocessor.enabled=True \
		--ClearMetadataPreprocessor.clear_notebook_metadata=False \
		--ClearMetadataPreprocessor.preserve_cell_metadata_mask=tags \
		--ClearMetadataPreprocessor.preserve_cell_metadata_mask=jupyter \
		$(NOTEBOOKS)
	$(BIN)/python .ci/clear_widget_outputs.py $(NOTEBOOKS)

bench: venv
	$(BIN)/python benchmarks/bench_quantize.py
	$(BIN)/python benchmarks/bench_granularity.py
	$(BIN)/python benchmarks/bench_explorer.py
	$(BIN)/python benchmarks/bench_w8a16.py
	$(BIN)/python benchmarks/bench_packing.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis test-artifacts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
