# Two commands do everything:  make run GOAL="…"   and   make test
SHELL := /bin/bash
VENV := .venv
GOAL ?= Write a Python function that checks whether a string is a palindrome, with tests.
export LANGGRAPH_CLI_NO_ANALYTICS := 1
export LANGGRAPH_NO_VERSION_CHECK := true
export LANGSMITH_TRACING ?= false
export LANGSMITH_TEST_TRACKING ?= false

.PHONY: setup run test lint serve clean
PORT ?= 8123

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt requirements/model-local.txt scripts/setup.sh
	@scripts/setup.sh

run: setup  ## plan and run GOAL on the embedded model
	$(VENV)/bin/orchestrator run "$(GOAL)"

test: setup  ## the layer contract, then the whole suite (with the marked set on the embedded model)
	@scripts/test-deps.sh
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/pytest -q

serve: setup  ## the LangGraph dev server, offline, token-protected (port 2024 is often taken: PORT=…)
	@$(VENV)/bin/python -m orchestrator.server_token --port $(PORT)
	$(VENV)/bin/langgraph dev --port $(PORT) --host 127.0.0.1 --no-browser --no-reload --n-jobs-per-worker 8

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/lint-imports --no-cache && $(VENV)/bin/mypy core tools agents graph evals orchestrator

clean:
	rm -rf .orchestrator .langgraph_api .pytest_cache

# -- Scale-out: the same graph on Aegra (PostgreSQL + Redis), docs/scale-out.md -------------
# Aegra 0.7+ needs Python >= 3.12, so it gets a venv of its own; one `make serve-aegra` is
# one API + worker instance: start as many as you like, on as many hosts, with the same URLs.
.PHONY: aegra-venv serve-aegra
# The first Python >= 3.12 found: python3.12, python3.13, then pyenv's builds.
AEGRA_PYTHON ?= $(shell for p in python3.12 python3.13 $(wildcard $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python); do \
  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && echo $$p && break; done)
AEGRA_VENV := .venv-aegra
AEGRA_PORT ?= 2026
AEGRA_HOST ?= 127.0.0.1
AEGRA_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/aegra
AEGRA_REDIS_URL ?= redis://127.0.0.1:6379/0

aegra-venv: $(AEGRA_VENV)/.installed

$(AEGRA_VENV)/.installed: pyproject.toml constraints.txt
	@test -n "$(AEGRA_PYTHON)" || { echo "aegra-venv: Aegra needs Python >= 3.12; none found (set AEGRA_PYTHON=...)"; exit 2; }
	$(AEGRA_PYTHON) -m venv $(AEGRA_VENV)
	$(AEGRA_VENV)/bin/pip install -q -c constraints.txt -e ".[scale]"
	touch $@

serve-aegra: aegra-venv  ## an Aegra instance on PostgreSQL + Redis (AEGRA_HOST, AEGRA_PORT, AEGRA_DATABASE_URL, AEGRA_REDIS_URL)
	$(AEGRA_VENV)/bin/python -c "import psycopg, sys; u = sys.argv[1]; base, db = u.rsplit('/', 1); c = psycopg.connect(base + '/postgres', autocommit=True); c.execute('SELECT 1 FROM pg_database WHERE datname=%s', (db,)).fetchone() or c.execute('CREATE DATABASE \"%s\"' % db)" "$(AEGRA_DATABASE_URL)"
	DATABASE_URL="$(AEGRA_DATABASE_URL)" REDIS_URL="$(AEGRA_REDIS_URL)" REDIS_BROKER_ENABLED=true \
	  $(AEGRA_VENV)/bin/aegra serve --host $(AEGRA_HOST) --port $(AEGRA_PORT) --config aegra.json

.PHONY: phoenix-venv
# Arize Phoenix, a local OpenTelemetry collector and trace viewer (tests/test_otel.py starts it;
# docs/observability.md): its own venv, it pins packages of its own.
PHOENIX_VENV := .venv-phoenix
phoenix-venv: $(PHOENIX_VENV)/.installed

$(PHOENIX_VENV)/.installed:
	python3 -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/pip install -q arize-phoenix==20.26.1
	touch $@
