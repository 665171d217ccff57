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

# The GeoIP database and hls.js (viewstats/assets.py) go to the cache every data dir reads: here
# in the repo, so that CI's clean clone caches them next to the checkout, and exported, so that
# `viewstats run` and the tests read that same cache. A change to the asset table re-runs setup.
export VIEWSTATS_CACHE_DIR ?= $(CURDIR)/.cache/viewstats
ASSETS := $(VIEWSTATS_CACHE_DIR)/.make-setup

$(ASSETS): viewstats/assets.py | $(VENV)/.runtime
	$(BIN)/viewstats setup
	touch $@

# Debian packages: ffmpeg makes the player's test stream, Chromium runs the browser tests.
/usr/bin/ffmpeg /usr/bin/chromium:
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(notdir $@)

# Idempotent by itself (an existing stream is kept).
$(DATA_DIR)/media/test/index.m3u8: | /usr/bin/ffmpeg $(VENV)/.runtime
	$(BIN)/python -m viewstats.player.sample_stream $(DATA_DIR)/media

PLATFORM_DATA := $(ASSETS) $(DATA_DIR)/media/test/index.m3u8

setup: $(VENV)/.runtime $(PLATFORM_DATA)

setup-test: $(VENV)/.test $(PLATFORM_DATA) /usr/bin/chromium
	$(BIN)/python -m viewstats.devtools.kafka_broker fetch

run: setup
	$(BIN)/viewstats run --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup-test lint
	$(BIN)/python -m pytest
