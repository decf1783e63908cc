# Two entry points, each self-contained on a fresh machine:
#   make run   - the main job on the data embedded in the installed package
#   make test  - install what the tests need, then run them
# Both create .venv when missing. torch is pinned here (the CPU build on this disk);
# the package itself accepts any torch >= 2.2.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
TORCH   ?= torch==2.13.0

.PHONY: run test lint venv

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

$(VENV)/.run-installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test,tune]'
	$(BIN)/pip install -q --no-deps torchattacks  # parity reference; its torchvision dep is unused
	$(BIN)/pip install -q triton==3.9.0  # the fused kernels' tests run under TRITON_INTERPRET=1
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/rnnlab tour

test: $(VENV)/.test-installed
	KERAS_BACKEND=torch $(BIN)/python -m pytest -q -m "not slow" tests

lint: $(VENV)/.test-installed
	$(BIN)/ruff format --check src tests examples benchmarks
	$(BIN)/ruff check src tests examples benchmarks
