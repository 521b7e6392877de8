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
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/pytest -q

serve: setup  ## the LangGraph dev server, offline (port 2024 is often taken: PORT=…)
	@echo "Dashboard: http://127.0.0.1:$(PORT)/dashboard/"
	$(VENV)/bin/langgraph dev --port $(PORT) --no-browser --no-reload --n-jobs-per-worker 8

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/lint-imports --no-cache && $(VENV)/bin/mypy core tools agents graph evals orchestrator

clean:
	rm -rf .orchestrator .langgraph_api .pytest_cache
