# spikebench: `make run` reproduces the default leaderboard, `make test` runs the suite.
# Both start with `setup`, which is idempotent (apt packages, .venv, pinned wheels).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export MPLCONFIGDIR := $(CURDIR)/.mplconfig
PYTEST_ARGS ?=
UI_PORT ?= 5000

.PHONY: setup run test test-fast ui lint clean-venv

setup:
	@bash scripts/setup.sh

run: setup
	dvc repro
	$(PY) -m spikebench.timings

# the whole suite (CI): unit, property, RTL, synthesis, stage and end-to-end tests
test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

# unit and property tests only (no stage runs, simulators, synthesis or e2e): a few minutes
test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

ui: setup
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port $(UI_PORT) \
	  --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow.db}"

lint: setup
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV) .setup-stamp
