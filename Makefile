# Every target creates the virtual environment and the system packages it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# The engine is installed into the venv (editable); dags/ stays a folder of DAG files.
export PYTHONPATH := $(CURDIR)/dags
export AIRFLOW_HOME ?= $(CURDIR)/.airflow

.PHONY: venv system-packages test test-random test-fast lint demo servers-up servers-down bench-backfill bench-reconcile bench-load bench-scale soak-interleaving clean

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -e .
	$(VENV)/bin/pip check
	touch $@

venv: $(VENV)/.installed

system-packages:
	@bash scripts/ensure_system_packages.sh

# Modules run side by side (each keeps its own servers); a module spends about a third of
# its time waiting on servers, sensors and retries, so four share two cores well.
# `make test` keeps each module's own order: a shuffled run still finds modules whose tests lean on
# an earlier one (README, "Tests"). `make test-random` shuffles (pytest-randomly), prints its seed at
# the end, and `make test-random SEED=N` replays that order.
SEED_OPTION = $(if $(SEED),--randomly-seed=$(SEED))
SUITE = -n 4 --dist loadfile --no-loadscope-reorder --durations=30

test: venv system-packages
	$(PY) -m pytest $(SUITE) -p no:randomly

test-random: venv system-packages
	$(PY) -m pytest $(SUITE) $(SEED_OPTION)

test-fast: venv
	$(PY) -m pytest tests/unit tests/dags $(SEED_OPTION)

lint: venv
	$(VENV)/bin/ruff check --select AIR3 dags plugins
	$(VENV)/bin/ruff check dags plugins tests

demo: venv system-packages
	$(PY) -m migration_engine.local.demo

servers-up: venv
	$(PY) -m migration_engine.local.estate up

servers-down: venv
	$(PY) -m migration_engine.local.estate down

# The interleaving test at length: 10 seeds of 300 steps (make test runs 3 of 70).
soak-interleaving: venv system-packages
	INTERLEAVING_SEEDS=$${INTERLEAVING_SEEDS:-11,12,13,14,15,16,17,18,19,20} INTERLEAVING_STEPS=$${INTERLEAVING_STEPS:-300} \
		$(PY) -m pytest tests/integration/test_interleaving.py -s -q --timeout=7200

bench-backfill: venv system-packages
	$(PY) bench/bench_backfill.py

bench-reconcile: venv system-packages
	$(PY) bench/bench_reconcile.py

bench-load: venv system-packages
	$(PY) bench/bench_load.py

# About 1 M, 5 M and 20 M rows (BENCH_SCALE_ROWS): half an hour or more on 2 cores.
bench-scale: venv system-packages
	$(PY) bench/bench_scale.py

clean:
	rm -rf $(VENV) .airflow .pytest_cache
