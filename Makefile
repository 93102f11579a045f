# sales_forecast: the two commands are `make demo` and `make test` (see README).
SHELL := /bin/bash
PYTHON ?= python3.11
ROOT := $(abspath .)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
LOCAL := $(ROOT)/.local
export AIRFLOW_HOME ?= $(LOCAL)/airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(ROOT)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(ROOT)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__PARALLELISM ?= 4
export AIRFLOW__CORE__EXECUTOR ?= LocalExecutor
export GX_ANALYTICS_ENABLED := false
# One BLAS thread per process: tasks are process-parallel, and statsmodels' small Kalman-filter matrices
# gain nothing from BLAS threads. Measured: two concurrent fitting processes ran 3.7x slower each with
# OpenBLAS's default threads on 2 cores (and one process alone 1.4x slower). See README "Scaling out".
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MLFLOW_ENABLE_ASYNC_LOGGING := false
export PATH := $(BIN):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help install install-dev install-browser lock demo test test-integration test-catalog test-browser bench dev-folds bench-quick airflow mlflow-ui models rollback serve-model lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamp files make re-runs fast: pip runs again only when the requirement or constraint files change.
# requirements*.txt pin the direct dependencies (each with its reason); constraints*.txt (`make lock`) pin
# every package of the venv to the set the tests last passed with, so a clone installs the same set later.
$(VENV)/.installed: requirements.txt constraints.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/python scripts/install_path.py
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt constraints.txt $(VENV)/.installed
	$(BIN)/pip install -q -r requirements-dev.txt -c constraints.txt
	touch $@

# AutoARIMA (statsforecast 2.1) needs pandas<3, the project pins pandas 3: it gets its own venv.
BENCH_VENV := $(ROOT)/.venv-bench
$(BENCH_VENV)/.installed: requirements-bench.txt constraints-bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q -r requirements-bench.txt -c constraints-bench.txt
	touch $@

# `make lock`: each constraints file from a scratch venv with an unconstrained install of its requirements
# (what resolves today), checked by `pip check`, then frozen. Run it after changing a pin, then `make test`.
LOCK_VENV := $(ROOT)/.cache/lock-venv
define lock_file
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install -q --upgrade pip
	$(LOCK_VENV)/bin/pip install -q -r $(1)
	$(LOCK_VENV)/bin/pip check
	{ printf '%s\n' "# Every package of the venv that $(1) makes, at the versions it resolved to when \`make lock\` ran" \
	    "# (a scratch venv, an unconstrained install, pip check, pip freeze). Installs use it as pip's -c file." \
	    "# Do not edit by hand: change a pin in $(1) (or the file it includes), then \`make lock\` and \`make test\`."; \
	  $(LOCK_VENV)/bin/pip freeze; } > $(2).tmp && mv $(2).tmp $(2)
	rm -rf $(LOCK_VENV)
endef

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make demo: set up everything and run sales_forecast end to end on the embedded default
demo: install
	$(BIN)/python scripts/airflow_local.py setup
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

## make test: install test tools and run the whole suite (unit, DAG, end-to-end)
test: install-dev
	$(BIN)/python -m pytest

## make test-integration: PostgreSQL + Redis (apt-installed if missing) + MLflow server + CeleryExecutor on 127.0.0.1
test-integration: install-dev
	$(BIN)/python -m pytest -m integration tests/integration --run-integration

## make test-catalog: the bad-input catalog, one real DAG run per corruption or fault (~3 min)
test-catalog: install-dev
	$(BIN)/python -m pytest -m catalog tests/integration/test_bad_input_catalog.py --run-catalog

# Playwright drives Debian's chromium (a browser download is not possible everywhere): apt when missing.
install-browser: install-dev
	@command -v chromium >/dev/null || { echo "installing Debian's chromium (apt)"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium >/dev/null; }

## make test-browser: the Airflow UI first hour, the Forecasts page and the MLflow UI in headless Chromium (~5 min)
test-browser: install-browser
	$(BIN)/python -m pytest -m browser tests/ui --run-browser

## make bench: quality vs AutoARIMA, smart retraining, 1,000-series DAG run, parse cost (bench/results/latest.*)
bench: $(VENV)/.installed $(BENCH_VENV)/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## make dev-folds DEV_ARGS="project --panel veg_daily_kg --detail": a modelling change on the development folds
## (the folds before the reported ones; docs/DEVELOPING.md), on the shipped panels and the weekly sets built from them
## (--panel iowa_weeks_sun / iowa_weeks_fri / veg_weeks_wed). DEV_ARGS=reference caches the trio's fits first (~30 min).
dev-folds: $(VENV)/.installed $(BENCH_VENV)/.installed
	$(BIN)/python bench/dev_folds.py $(or $(DEV_ARGS),project)

## make bench-quick: 2 series, 2 folds, no AutoARIMA, no scale run (what the tests run)
bench-quick: $(VENV)/.installed
	$(BIN)/python bench/run.py --quick $(BENCH_ARGS)

## make airflow: Airflow (what `airflow standalone` runs, each service supervised) on 127.0.0.1:8080 (AIRFLOW_HOST / AIRFLOW_PORT) with this project's DAGs and settings
airflow: install
	$(BIN)/python scripts/airflow_local.py setup
	$(BIN)/python scripts/airflow_local.py standalone

## make mlflow-ui: the MLflow UI on 127.0.0.1:5000 (MLFLOW_UI_HOST / MLFLOW_UI_PORT) over the embedded tracking store
mlflow-ui: install
	$(BIN)/python scripts/airflow_local.py mlflow-ui

## make models: champion, previous and last candidates per series
models: install
	$(BIN)/python scripts/models.py list

## make rollback SERIES="..." [VERSION=previous|last-passed|N] [REASON="..."]  (SERIES=all for every series)
rollback: install
	$(BIN)/python scripts/models.py rollback --series "$(SERIES)" --to "$(or $(VERSION),previous)" --reason "$(or $(REASON),manual rollback)"

## make serve-model SERIES="..." [VERSION=N] [PORT=5002]: the series' champion over HTTP (mlflow models serve; POST /invocations)
serve-model: install
	$(BIN)/python scripts/models.py serve --series "$(SERIES)" --port "$(or $(PORT),5002)" $(if $(VERSION),--version "$(VERSION)")

## make lock: re-pin constraints.txt and constraints-bench.txt from fresh installs (after changing a pin in requirements*.txt)
lock:
	$(call lock_file,requirements-dev.txt,constraints.txt)
	$(call lock_file,requirements-bench.txt,constraints-bench.txt)

## make lint: ruff over dags, plugins, include, tests, scripts and bench
lint: install-dev
	$(BIN)/ruff check dags plugins include tests scripts bench

## make clean: remove .local (the embedded Airflow DB, MLflow store, warehouse and snapshots); the venvs stay
clean:
	rm -rf $(LOCAL)

## make help (or plain `make`): this list
help:
	@sed -n 's/^## //p' $(firstword $(MAKEFILE_LIST))
