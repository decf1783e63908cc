# Two entry points, each self-contained on a fresh machine:
#   make run   - the main job on the data embedded in the installed package
#   make test  - install what the tests need, then run them
# and two more: make docs (the documentation site, into site/) and make lint.
# All create .venv when missing. torch is pinned here to the version the tests run on
# (the CPU build on this disk); pyproject.toml's floor, torch>=2.13, is that same version.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
TORCH   ?= torch==2.13.0

.PHONY: run test lint docs venv chromium

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

$(VENV)/.run-installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e .
	touch $@

# the `test` extra brings keras+h5py, optuna, tensorboard, mkdocs, build, twine and triton
$(VENV)/.test-installed: pyproject.toml Makefile | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip install -q --no-deps torchattacks  # parity reference; its torchvision dep is unused
	touch $@ $(VENV)/.run-installed

# Debian's chromium for tests/test_browser.py: installed when missing and we are root with
# apt-get (CI); otherwise left alone and the browser tests skip (outside CI).
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	      chromium fonts-dejavu-core >/dev/null; \
	  fi; \
	fi

run: $(VENV)/.run-installed
	$(BIN)/rnnlab tour

test: $(VENV)/.test-installed chromium
	KERAS_BACKEND=torch $(BIN)/python -m pytest -q -m "not slow" tests

docs: $(VENV)/.test-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

lint: $(VENV)/.test-installed
	$(BIN)/ruff format --check src tests examples benchmarks
	$(BIN)/ruff check src tests examples benchmarks
