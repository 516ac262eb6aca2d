# Two commands do everything on a fresh machine: `make dev` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
HOST ?= 127.0.0.1
PORT ?= 3000
# apt-get needs root; use sudo when we are not root and it exists.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: setup setup-test setup-openai-whisper dev test lint format bench clean

## setup: Debian ffmpeg if absent, then .venv with the project and its dependencies
setup: $(VENV)/.installed
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || $(MAKE) --no-print-directory apt PKGS="ffmpeg"

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

## setup-test: setup, plus test tools (espeak-ng, sox, PostgreSQL) and the dev extra
setup-test: setup $(VENV)/.installed-dev $(VENV)/.installed-openai-whisper
	@missing=""; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	command -v pg_ctlcluster >/dev/null || command -v postgres >/dev/null || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then $(MAKE) --no-print-directory apt PKGS="$$missing"; fi

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## setup-openai-whisper: the optional openai-whisper engine (CPU torch first, no CUDA download)
# Elsewhere, add TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" for a CPU build.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
setup-openai-whisper: $(VENV)/.installed-openai-whisper

$(VENV)/.installed-openai-whisper: $(VENV)/.installed
	$(BIN)/pip install --quiet $(TORCH_PIP_ARGS) '$(TORCH_SPEC)'
	$(BIN)/pip install --quiet -e '.[openai-whisper]'
	touch $@

apt:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(PKGS)

## dev: Dagster UI + daemon on the embedded default (folder bucket, SQLite, offline)
dev: setup
	mkdir -p data/bucket/incoming "$(DAGSTER_HOME)"
	cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"
	@echo "Drop consultations into $(CURDIR)/data/bucket/incoming ; UI on http://$(HOST):$(PORT)"
	$(BIN)/dagster dev -h $(HOST) -p $(PORT)

## test: unit + integration tests (real ffmpeg, Whisper tiny.en, Dagster, SQLite, PostgreSQL)
test: setup-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: STT speed, drop-to-rows latency and Dagster overhead on this machine
bench: setup-test
	$(BIN)/python -m benchmarks.pipeline_benchmark

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
