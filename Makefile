# The project's commands. `make demo` runs the main job, `make test` the whole test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export BENTOML_DO_NOT_TRACK := True
export PYTHONUNBUFFERED := 1

UV ?= $(or $(shell command -v uv 2>/dev/null),$(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen

.PHONY: help install demo test lint format bench

help:  ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --user --quiet "uv>=0.9"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python 3.11
	@touch $@

install: .venv/.synced  ## Create .venv from uv.lock (installs uv if missing)

demo: install  ## The main job: batch API -> Kedro pipelines, on the shipped sample, no services needed
	$(RUN) covertype-demo

test: install  ## All tests, with the real services they need (started and stopped by the tests)
	$(RUN) pytest

lint: install  ## ruff check + format check
	$(RUN) ruff check src tests
	$(RUN) ruff format --check src tests

format: install  ## ruff fix + format
	$(RUN) ruff check --fix src tests
	$(RUN) ruff format src tests
