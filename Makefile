# Two commands do everything on a fresh machine: `make dev` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
# Dagster's storage in PostgreSQL when set. dagster-postgres needs psycopg2, and SQLAlchemy 2.1
# reads a plain postgresql:// URL as psycopg 3: name the driver for every Dagster process.
ifneq ($(DAGSTER_PG_URL),)
override export DAGSTER_PG_URL := $(patsubst postgres://%,postgresql+psycopg2://%,$(patsubst postgresql://%,postgresql+psycopg2://%,$(DAGSTER_PG_URL)))
endif
# Where `make dev` serves the UI: `make dev PORT=3001`, `make dev HOST=0.0.0.0` (every interface).
HOST ?= 127.0.0.1
PORT ?= 3000
# The instance template `make dev` installs as $(DAGSTER_HOME)/dagster.yaml (target `instance`).
INSTANCE_TEMPLATE := deploy/dagster.yaml
# apt-get needs root; use sudo when we are not root and it exists.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: worker setup setup-test setup-openai-whisper venv apt dev check-port instance sql test lint format \
	bench clean

# A .venv whose python cannot run pip (made without ensurepip, as on Debian without
# python3-venv, or left behind by a removed or upgraded python) is rebuilt: marking its
# marker phony makes `setup` run again, and that recreates the venv.
ifneq ($(wildcard $(VENV)),)
ifneq ($(shell $(BIN)/python -m pip --version >/dev/null 2>&1 && echo ok),ok)
.PHONY: $(VENV)/.installed
endif
endif

## setup: Debian ffmpeg if absent, then .venv with the project, its dependencies and mono
##      diarization (CPU torch, then Resemblyzer)
setup: $(VENV)/.installed $(VENV)/.installed-diarization
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || $(MAKE) --no-print-directory apt PKGS="ffmpeg"

$(VENV)/.installed: pyproject.toml
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(MAKE) --no-print-directory venv
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

## venv: a new .venv from $(PYTHON); installs Debian's python3.X-venv when ensurepip is missing
# $(APT) rather than a literal $(MAKE): make -n would run a line naming $(MAKE) for real.
APT = $(MAKE) --no-print-directory apt
venv:
	@if [ ! -e $(VENV) ]; then :; \
	elif $(BIN)/python -m pip --version >/dev/null 2>&1; then echo "Recreating $(VENV)"; \
	else echo "$(VENV) has no working python or pip: recreating it"; fi
	rm -rf $(VENV)
	@if ! $(PYTHON) -m venv $(VENV); then \
	  rm -rf $(VENV); \
	  exe=$$($(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))'); \
	  pkg=$$($(PYTHON) -c 'import sys; print("python3.%d-venv" % sys.version_info[1])'); \
	  if command -v apt-get >/dev/null && dpkg -S "$$exe" >/dev/null 2>&1; then \
	    echo "$(PYTHON) -m venv failed; installing Debian's $$pkg (ensurepip), then retrying"; \
	    $(APT) PKGS="$$pkg" && $(PYTHON) -m venv $(VENV) \
	      || { rm -rf $(VENV); echo "Could not create $(VENV). Install $$pkg (sudo apt-get install $$pkg) and run make again." >&2; exit 1; }; \
	  else \
	    echo "Could not create $(VENV) with $(PYTHON) ($$exe). Give it ensurepip (Debian/Ubuntu: sudo apt-get install $$pkg), or choose another Python: make PYTHON=/path/to/python3.11 ..." >&2; \
	    exit 1; \
	  fi; \
	fi

## setup-test: setup, plus test tools (espeak-ng, sox, PostgreSQL) and the dev extra
setup-test: setup $(VENV)/.installed-dev $(VENV)/.installed-openai-whisper
	@missing=""; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	command -v pg_ctlcluster >/dev/null || command -v postgres >/dev/null || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then $(MAKE) --no-print-directory apt PKGS="$$missing"; fi

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

## setup-openai-whisper: the optional openai-whisper engine (CPU torch first, no CUDA download)
# Elsewhere, add TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu" for a CPU build.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
setup-openai-whisper: $(VENV)/.installed-openai-whisper

$(VENV)/.installed-openai-whisper: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) '$(TORCH_SPEC)'
	$(BIN)/python -m pip install --quiet -e '.[openai-whisper]'
	touch $@

$(VENV)/.installed-diarization: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet $(TORCH_PIP_ARGS) '$(TORCH_SPEC)'
	$(BIN)/python -m pip install --quiet -e '.[diarization]'
	touch $@

apt:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(PKGS)

## dev: Dagster UI + daemon on the embedded default (folder bucket, SQLite, offline).
##      PORT=3001 / HOST=0.0.0.0 serve elsewhere; Ctrl-C stops the UI and the daemon.
dev: check-port setup instance
	mkdir -p data/bucket/incoming
	@echo "Drop consultations into $(CURDIR)/data/bucket/incoming ; UI on http://$(HOST):$(PORT) ; Ctrl-C stops it"
	# As if activated: dg runs the code location in the project's own .venv.
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(BIN)):$$PATH $(BIN)/dg dev -h $(HOST) -p $(PORT)

# First, and with the system python: `dg dev` would start the daemon and the code server
# before failing on a taken port with one obscure line among its logs.
check-port:
	@$(PYTHON) deploy/check_port.py $(HOST) $(PORT)

## instance: install deploy/dagster.yaml as $(DAGSTER_HOME)/dagster.yaml, keeping an edited one;
##      with DAGSTER_PG_URL set, Dagster's own storage is that PostgreSQL database
# Replaced only when missing or an unedited released variant (deploy/dagster.yaml.sha256).
instance:
	@$(PYTHON) deploy/install_instance.py "$(DAGSTER_HOME)" --template $(INSTANCE_TEMPLATE) \
	  $(if $(DAGSTER_PG_URL),--postgres)

## worker: a Celery worker for CSCOACH_EXECUTOR=celery: make worker QUEUES=stt (transcribes),
##      QUEUES="analysis dagster" (the LLM + the light steps), default every queue;
##      CONCURRENCY=n processes (default: the cores)
# One comma-joined -q: celery keeps only the last of repeated -Q options.
QUEUES ?= stt analysis dagster
comma := ,
empty :=
space := $(empty) $(empty)
worker: setup
	# dagster-celery starts `celery` from PATH: the project's own. CONCURRENCY (default:
	# the cores) is both the pool size and how many STT steps share the cores' threads.
	PATH=$(abspath $(BIN)):$$PATH $(if $(CONCURRENCY),CSCOACH_STT_CONCURRENCY=$(CONCURRENCY)) \
	  $(BIN)/dagster-celery worker start -A dagster_celery.app \
	  -y deploy/celery.yaml \
	  -q $(subst $(space),$(comma),$(strip $(QUEUES))) $(if $(CONCURRENCY),-- --concurrency=$(CONCURRENCY))

## sql: print a query's result from the warehouse (SQLite or PostgreSQL): make sql Q="SELECT ..."
sql: setup
	@$(BIN)/python -m cscoach_pipeline.query $(if $(Q),"$$Q")

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
	$(BIN)/python -m benchmarks.throughput_benchmark
	$(BIN)/python -m benchmarks.scorecard_agreement
	$(BIN)/python -m benchmarks.insight_agreement
	$(BIN)/python -m benchmarks.aggregates_benchmark
	$(BIN)/python -m benchmarks.diarization_benchmark

## clean: start over: deletes .venv, all of data/ (bucket folder, warehouse, Dagster home), caches
clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
