# Setup is idempotent. A step with a file target is skipped while that file is there and newer
# than its inputs: the pip installs leave a stamp; ffmpeg, Chromium and the test stream are their
# own files. The asset cache and the Kafka jars have no stamp and are checked every time: their
# commands (`viewstats setup`, `kafka_broker fetch`) look at the cache themselves and fetch only
# what is missing (see below).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= data

.PHONY: help run test setup setup-test lint assets
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

# The GeoIP database, hls.js and the dashboard's libraries (viewstats/assets.py) go to the cache
# that `viewstats` reads without being told (VIEWSTATS_CACHE_DIR when set, else
# ~/.cache/viewstats), so that every command and benchmark typed in this checkout afterwards finds
# them, with no variable to export. No stamp: `viewstats setup` checks every file against its
# manifest and the asset table in ~0.1 s and downloads only what is missing, while a stamp would
# not see the cache deleted (it is outside the checkout, shared with other installs).
assets: | $(VENV)/.runtime
	$(BIN)/viewstats setup

# Debian packages: ffmpeg makes the player's test stream, Chromium runs the browser tests.
/usr/bin/ffmpeg /usr/bin/chromium:
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(notdir $@)

# Idempotent by itself (an existing stream is kept).
$(DATA_DIR)/media/test/index.m3u8: | /usr/bin/ffmpeg $(VENV)/.runtime
	$(BIN)/python -m viewstats.player.sample_stream $(DATA_DIR)/media

PLATFORM_DATA := assets $(DATA_DIR)/media/test/index.m3u8

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
