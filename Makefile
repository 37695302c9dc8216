# INFRACALC developer commands. `make help` lists them.
# Everything installs itself: Python packages into .venv/, servers and linters into .tools/.

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
INFRACALC := $(BIN)/infracalc
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The exact versions (and hashes) of every Python package, so that a fresh machine installs what CI tested.
LOCK := requirements-dev.txt

$(BIN)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

.PHONY: install
install: $(BIN)/.installed ## Install Python packages (.venv/) and the pinned servers and linters (.tools/)
	$(INFRACALC) tools install

.PHONY: lock
lock: $(BIN)/.installed ## Pin every Python package at its newest allowed version into requirements-dev.txt (uv pip compile)
	test -x $(BIN)/uv || $(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
	  --quiet --output-file $(LOCK)

.PHONY: up
up: install ## Start the whole platform on embedded defaults (Ctrl-C stops it)
	$(INFRACALC) up

.PHONY: up-detach
up-detach: install ## Start the platform in the background (stop it with `make down`)
	$(INFRACALC) up --detach

.PHONY: down
down: ## Stop a platform started in the background
	$(INFRACALC) down

.PHONY: lint
lint: $(BIN)/.installed ## Ruff (lint and format check) on Python, policy checks on Rego
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory policy-check

.PHONY: policy-check
policy-check: install ## opa fmt, opa check --strict, opa test --coverage, regal lint
	@OPA=$$($(INFRACALC) tools path opa); REGAL=$$($(INFRACALC) tools path regal); set -e; \
	$$OPA fmt --fail -l policies; \
	$$OPA check --strict policies; \
	$$OPA test --coverage --format=json policies | $(BIN)/python -c "import json, sys; c = json.load(sys.stdin)['coverage']; print('opa test: %.1f%% coverage (minimum 95%%)' % c); sys.exit(c < 95)"; \
	$$OPA test policies; \
	$$REGAL lint policies

.PHONY: typecheck
typecheck: $(BIN)/.installed ## mypy --strict on the package
	$(BIN)/mypy

.PHONY: docs
docs: $(BIN)/.installed ## Build the documentation site into build/site/ (strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

.PHONY: docs-screenshots
docs-screenshots: install ## Take the guides' screenshots again (browser tests, both languages) into docs/images/generated/
	INFRACALC_DOC_SCREENSHOTS=1 $(BIN)/pytest tests/integration/docs tests/integration/hub/test_jupyterlab.py -p no:cacheprovider $(PYTEST_ARGS)

.PHONY: test
test: install lint typecheck ## Lint, type-check, then run every test against real servers, with line coverage
	$(BIN)/pytest --cov --cov-report=html $(PYTEST_ARGS)
	@echo "line coverage of infracalc/: $$($(BIN)/coverage report --format=total --precision=1) % (test-artifacts/coverage/index.html)"

.PHONY: test-unit
test-unit: $(BIN)/.installed ## Run the unit tests only (no server, about a minute)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

.PHONY: bench
bench: install ## Run the benchmarks in bench/ (figures beside their baseline)
	@ls bench/*.py >/dev/null 2>&1 || { echo "no benchmarks yet"; exit 0; }; \
	for b in bench/*.py; do $(BIN)/python $$b; done

.PHONY: clean
clean: ## Remove local state (.infracalc/) and test artifacts; keeps .venv/ and .tools/
	rm -rf .infracalc test-artifacts
