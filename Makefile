# spikebench: `make smoke` tries the whole pipeline in a few minutes, `make run` reproduces the
# default leaderboard (~50 min on 2 cores), `make test` runs the suite. `make help` lists the targets.
# Every target starts with `setup`, which is idempotent (apt packages, .venv, pinned wheels).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export MPLCONFIGDIR := $(CURDIR)/.mplconfig
PYTEST_ARGS ?=
UI_PORT ?= 5000

.PHONY: help setup smoke run seeds test test-fast ui lint clean-venv
.DEFAULT_GOAL := help

help: ## list the targets
	@echo "spikebench targets (all but help and clean-venv start with the idempotent set-up):"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 20
	@echo "More: .venv/bin/spikebench --help (run, smoke, leaderboard, stages, times, ui)"

setup: ## apt packages, .venv and the pinned Python stack (a second run takes a second)
	@bash scripts/setup.sh

smoke: setup ## the smoke profile (digits) as a DVC experiment: a few minutes; params.yaml stays as it is
	$(PY) -m spikebench.cli smoke

run: setup ## reproduce the default leaderboard (dvc repro, ~47-54 min on 2 cores), then print it
	dvc repro
	$(PY) -m spikebench.timings
	$(PY) -m spikebench.cli leaderboard

seeds: setup ## three training seeds of the headline methods (default profile) -> reports/seeds.md (~45 min after make run)
	bash scripts/seeds.sh

# the whole suite (CI): unit, property, RTL, synthesis, stage and end-to-end tests
test: setup ## the whole test suite (unit, property, RTL, synthesis, end-to-end smoke pipeline)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# unit and property tests only (no stage runs, simulators, synthesis or e2e): a few minutes
test-fast: setup ## unit and property tests only (no stage runs, simulators or e2e): a few minutes
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

ui: setup ## the MLflow UI on http://127.0.0.1:5000 (loopback only; UI_PORT=... to change)
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port $(UI_PORT) \
	  --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}"

lint: setup ## ruff
	$(VENV)/bin/ruff check .

clean-venv: ## remove .venv (the next target re-creates it)
	rm -rf $(VENV) .setup-stamp
