# Setup is idempotent: each step leaves a stamp and is skipped while its inputs are unchanged.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= data

.PHONY: help run test setup setup-test lint
.DEFAULT_GOAL := help

help:
	@echo "make run   set up and start the platform on the embedded default (http://$(HOST):$(PORT))"
	@echo "make test  set up everything the tests need and run the whole suite"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.runtime

$(DATA_DIR)/geoip/dbip-country.mmdb: scripts/fetch_geoip.sh
	bash scripts/fetch_geoip.sh $(DATA_DIR)/geoip

setup: $(VENV)/.runtime $(DATA_DIR)/geoip/dbip-country.mmdb

setup-test: $(VENV)/.test $(DATA_DIR)/geoip/dbip-country.mmdb
	$(BIN)/python scripts/kafka_broker.py fetch

run: setup
	$(BIN)/viewstats run --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/mypy

test: setup-test lint
	$(BIN)/python -m pytest
