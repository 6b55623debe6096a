# Everything starts from nothing but Python: `make run` and `make test` create .venv,
# install the pinned requirements and the project itself (`pip install -e .`: `pipeline`
# imports from any folder, and .venv/bin/clusterlab exists), and go.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APP_STAMP := $(VENV)/.installed-app
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run dev test bench bench-quality bench-search bench-facets bench-codebook lint format install install-app clean-cache sample

ADDRESS ?= 127.0.0.1
PORT ?= 8501

# the same command as from any other folder: .venv/bin/clusterlab app (pipeline/launch.py)
run: $(APP_STAMP)
	$(BIN)/clusterlab app --address $(ADDRESS) --port $(PORT)

# for developers: the app reloads when a source file is saved (users get no file watcher)
dev: $(APP_STAMP)
	$(BIN)/clusterlab app --address $(ADDRESS) --port $(PORT) \
		--server.fileWatcherType auto --server.runOnSave true

sample: $(APP_STAMP)
	$(BIN)/clusterlab run pipeline/data/sample_feedback.csv --text-column comment --out out/sample_labeled.csv --plots

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q

bench: $(APP_STAMP)
	$(BIN)/python -m pipeline.bench $(BENCH_ARGS)

bench-quality: $(APP_STAMP)
	$(BIN)/python -m pipeline.bench_quality $(BENCH_ARGS)

# Explore at 100,000 texts: search (words, meaning), filters, breakdowns and trends; the codebook
bench-search: $(APP_STAMP)
	$(BIN)/python -m pipeline.bench_search $(BENCH_ARGS)

bench-facets: $(APP_STAMP)
	$(BIN)/python -m pipeline.bench_facets $(BENCH_ARGS)

bench-codebook: $(APP_STAMP)
	$(BIN)/python -m pipeline.bench_codebook $(BENCH_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check app.py pages pipeline tests
	$(BIN)/ruff format --check app.py pages pipeline tests

format: $(DEV_STAMP)
	$(BIN)/ruff format pipeline tests
	$(BIN)/ruff check --fix pipeline tests

install: $(DEV_STAMP)

# a server's or a Dask worker's set-up: the pinned requirements and the project, no test tools
install-app: $(APP_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# pyproject.toml: the package's contents and its `clusterlab` command; its dependencies are
# requirements.txt, installed pinned first, so the project itself installs with --no-deps
$(APP_STAMP): requirements.txt pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@# compile UMAP's numba code into its on-disk cache now, not during someone's first run
	$(BIN)/python -m pipeline.warmup $(WARMUP_ARGS)
	@# the Explore map's plotly.js where Streamlit serves static files, by the app's own copy
	@# (pages/ui/scatter.py does it on first use too: this is for an install whose folder the
	@# server cannot write)
	$(BIN)/python -c 'import sys; from pages.ui.scatter import serve_plotly_js; sys.exit(0 if serve_plotly_js() else 1)'
	touch $@

$(DEV_STAMP): requirements-dev.txt $(APP_STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip check
	touch $@
