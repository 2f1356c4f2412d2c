# Two set-up commands work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test unit lint ui api services clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/oddsforge demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/dagster definitions validate -w workspace.yaml
	$(BIN)/pytest

# The unit suite alone (pure and in-memory tests, about a minute): the quick loop while working.
unit: $(STAMP)
	$(BIN)/pytest -m "not integration" -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

ui: $(STAMP)
	$(BIN)/oddsforge ui

api: $(STAMP)
	$(BIN)/oddsforge api

# Redis and PostgreSQL for the operations tests (CI runs this first; needs root or sudo once).
services:
	bash scripts/ci_services.sh

clean:
	rm -rf $(VENV) data/lake data/warehouse .dagster_home
