# npnet: `make train` and `make test` each set up .venv by themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CONFIG ?= configs/cnn.yaml

.DEFAULT_GOAL := help
.PHONY: help venv train test lint format torch clean

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_.-]+:.*?## ' $(MAKEFILE_LIST) | awk -F ':.*?## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The stamp is rebuilt whenever pyproject.toml changes, so new dependencies get installed.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[dev,plot]'
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install npnet (editable) with its dev and plot extras

train: $(STAMP)  ## train the default config (CONFIG=configs/cnn.yaml) on real MNIST
	$(BIN)/npnet train $(CONFIG)

test: lint  ## lint, then run the whole test suite
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

torch: $(STAMP)  ## install the CPU PyTorch the reference tests compare against
	$(BIN)/python -m pip install --quiet torch==2.13.0

clean:  ## remove the virtualenv and caches (never runs/ or data/)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
