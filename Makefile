# The project's commands. `make demo` runs the main job, `make test` the whole test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
# mkdocs-gen-files and mkdocs-material print banners about MkDocs' future on every build: noise in the logs.
export DISABLE_MKDOCS_2_WARNING := true
export NO_MKDOCS_2_WARNING := 1
export BENTOML_DO_NOT_TRACK := True
export PYTHONUNBUFFERED := 1
# MLflow draws a progress bar for every model it downloads (a few kB each here): noise in the logs.
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

UV ?= $(or $(shell command -v uv 2>/dev/null),$(HOME)/.local/bin/uv)
RUN := $(UV) run --frozen

.PHONY: help install system-deps demo bench test notebooks lint format dag airflow

# Debian packages the tests drive for real: headless Chromium for the UI tests, Prometheus to scrape
# the service and the Pushgateway for the monitoring pipeline's batch metrics, Docker (dockerd,
# iptables) and debootstrap for the compose stack's test, which starts its own dockerd and builds every
# image from Debian's and PyPI's packages (none of these daemons starts by itself here).
SYSTEM_TOOLS := /usr/bin/chromium /usr/bin/chromedriver /usr/bin/prometheus /usr/bin/promtool \
  /usr/bin/prometheus-pushgateway /usr/sbin/dockerd /usr/sbin/iptables /usr/sbin/debootstrap

help:  ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	python3 -m pip install --user --quiet "uv>=0.9"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python 3.11
	@touch $@

install: .venv/.synced  ## Create .venv from uv.lock (installs uv if missing)

$(SYSTEM_TOOLS) &:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver prometheus \
	  prometheus-pushgateway docker.io iptables debootstrap

system-deps: $(SYSTEM_TOOLS)  ## Debian packages the tests need (Chromium, Prometheus, Pushgateway, Docker, debootstrap)

demo: install  ## The main job: batch API -> Kedro pipelines, on the shipped sample, no services needed
	$(RUN) covertype-demo

bench: install  ## Champion vs course baseline, and one cycle's time at 1.5k, 15k and 150k rows
	$(RUN) python benchmarks/cycle_benchmark.py

.PHONY: bench-models
bench-models: install  ## Size on disk, quality and fit time of model configs (ROWS=465000 resamples the training split)
	$(RUN) python -m benchmarks.model_size_bench --rows $(or $(ROWS),0)

.PHONY: bench-engine
bench-engine: install  ## Inference engines (ONNX Runtime, Treelite, LightGBM's Booster) vs predict_proba per family at 1-1,000 records
	$(RUN) python -m benchmarks.engine_bench

.PHONY: bench-ingest
bench-ingest: install  ## Ingestion's write path vs DataFrame.to_sql, 58,101 synthetic rows into MariaDB
	$(RUN) python benchmarks/ingest_bench.py

.PHONY: bench-monitoring
bench-monitoring: install  ## A drift report at 58,101 x 465,000 rows; the prediction log's cost on the service
	$(RUN) python -m benchmarks.monitoring_bench

.PHONY: bench-scale
# Target-specific: a global ROWS default would reach bench-models too (and resample it to 581,012 rows).
bench-scale: ROWS ?= 581012
WINDOW ?= 90
bench-scale: install  ## Ten batch windows at full volume (ROWS=58101 for a quick run), harvest off and on
	$(RUN) python benchmarks/scale_bench.py --rows $(ROWS) --window-seconds $(WINDOW)

test: install system-deps  ## All tests, with the real services they need (started and stopped by the tests)
	$(RUN) pytest

# Jupyter starts each kernel in notebooks/; the notebooks go to the project root and read the catalog.
notebooks: install  ## Run notebooks/ on the project's stores (KEDRO_ENV=local|stack), as HTML in data/08_reporting/
	KEDRO_ENV=$(KEDRO_ENV) $(RUN) jupyter nbconvert --execute --to html --output-dir data/08_reporting notebooks/*.ipynb

dag: install  ## Regenerate airflow_dags/covertype_dag.py from the pipelines (kedro airflow create)
	$(RUN) python -m covertype.stack.airflow dag

KEDRO_ENV ?= local
airflow: install  ## Airflow with the project's DAG every 5 min on http://127.0.0.1:8080 (KEDRO_ENV=local|stack)
	$(RUN) python -m covertype.stack.airflow run --kedro-env $(KEDRO_ENV)

lint: install  ## ruff check + format check
	$(RUN) ruff check src tests
	$(RUN) ruff format --check src tests

format: install  ## ruff fix + format
	$(RUN) ruff check --fix src tests
	$(RUN) ruff format src tests

# Serving: the registry's champion behind BentoML, and the Streamlit app that uses it.
.PHONY: serve ui bento bench-serving
SERVE_PORT ?= 3000
UI_PORT ?= 8501

serve: install  ## Serve covertype@champion on http://127.0.0.1:3000 (registry: MLFLOW_TRACKING_URI or ./mlflow.db)
	@$(RUN) python -m covertype.first_run 127.0.0.1 $(SERVE_PORT) "make serve SERVE_PORT=3001"
	$(RUN) bentoml serve covertype.serving.service:CovertypeClassifier --host 127.0.0.1 --port $(SERVE_PORT)

ui: install  ## The Streamlit app on http://127.0.0.1:8501, predicting through `make serve`
	@$(RUN) python -m covertype.first_run 127.0.0.1 $(UI_PORT) "make ui UI_PORT=8502"
	COVERTYPE_SERVICE_URL=$${COVERTYPE_SERVICE_URL:-http://127.0.0.1:$(SERVE_PORT)} $(RUN) streamlit run \
	  src/covertype/ui/app.py --server.headless true --server.address 127.0.0.1 --server.port $(UI_PORT) \
	  --browser.gatherUsageStats false

bento: install  ## Build the service's bento from bentofile.yaml (build context src/, packages pinned by uv.lock)
	$(UV) export --frozen --no-default-groups --no-emit-project --no-hashes --quiet -o src/bento-requirements.txt
	$(RUN) bentoml build -f bentofile.yaml src

bench-serving: install  ## One request's stages in-process, then our service vs the echo floor and `mlflow models serve`
	$(RUN) python benchmarks/serving_profile.py
	$(RUN) python benchmarks/serving_bench.py

# The full stack in containers (docker-compose.yml): `make env`, then `docker compose up -d`.
.PHONY: env check-stack

env: install  ## Write .env from .env.example with fresh secrets (docker compose refuses empty ones)
	$(RUN) covertype-stack env

check-stack: install  ## Each compose service up or down, with the reason (docker compose ps + healthchecks)
	$(RUN) covertype-stack check

# The documentation site (mkdocs-material): docs/ with pages generated from the code, conf/ and
# benchmarks/results/ at every build. --strict: a broken link or a missing page fails the build.
# mkdocs shows every DeprecationWarning of the libraries the generators import (pathspec, pydantic
# inside BentoML) with its traceback; they are not the docs' warnings.
.PHONY: docs docs-serve
DOCS_PORT ?= 8001
docs docs-serve: export PYTHONWARNINGS := ignore::DeprecationWarning

docs: install  ## Build the docs site into site/ (--strict), pages generated from the code and conf/
	$(RUN) mkdocs build --strict

docs-serve: install  ## Serve the docs on http://127.0.0.1:8001, rebuilt on every change
	$(RUN) mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)
