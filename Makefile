# Petstore — every target installs what it needs first. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8080
HOST   ?= 127.0.0.1
PIP    := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt

.DEFAULT_GOAL := help
.PHONY: help install install-test run migrate seed audit-verify rotate-keys test lint spec-lint unit contract bench serve-prod sdk clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: setup.cfg constraints.txt | $(BIN)/python
	$(PIP) -e .
	@touch $@

$(VENV)/.installed-test: setup.cfg constraints.txt package.json $(VENV)/.installed
	$(PIP) -e '.[test,bench]'
	npm install --no-audit --no-fund --loglevel=error
	test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || apt-get install -y chromium chromium-driver
	@touch $@

install: $(VENV)/.installed ## Create .venv and install the server

install-test: $(VENV)/.installed-test ## Install test, lint and bench tools too

migrate: install ## Apply Alembic migrations to DATABASE_URL (default: var/petstore.db)
	$(BIN)/python manage.py migrate

seed: migrate ## Insert demo pets into an empty database
	$(BIN)/python manage.py seed

audit-verify: install ## Walk every tenant's audit-log hash chain; print the first broken link
	$(BIN)/python manage.py audit-verify

rotate-keys: install ## New token-signing key in var/jwt-keys (previous ones verify until their tokens expire)
	$(BIN)/python manage.py rotate-keys

run: seed ## Migrate, seed and serve http://127.0.0.1:8080/v1 (PORT to change)
	$(BIN)/uvicorn --factory app:app_from_env --host $(HOST) --port $(PORT) --lifespan on --no-access-log

serve-prod: migrate ## gunicorn, uvicorn workers (WORKERS, default: one per core); gunicorn.conf.py
	$(BIN)/gunicorn -c gunicorn.conf.py -b $(HOST):$(PORT) $(if $(WORKERS),-w $(WORKERS))

lint: install-test ## ruff, mypy, import-linter, spec validation, Spectral and Redocly
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/openapi-spec-validator spec/openapi.yaml spec/admin.yaml spec/oauth.yaml
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true npx --no-install openapi-typescript \
	  spec/openapi.yaml --redocly spec/clients/redocly.yaml -o build/sdk/typescript/schema.d.ts --silent
	npx --no-install tsc -p spec/clients/tsconfig.json
	npx --no-install spectral lint spec/openapi.yaml spec/admin.yaml spec/oauth.yaml --fail-severity warn
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	  npx --no-install redocly lint spec/openapi.yaml spec/admin.yaml spec/oauth.yaml --format=stylish

unit: install-test ## Unit and integration tests (pytest)
	$(BIN)/pytest

contract: install-test ## Schemathesis (all checks) against a live server, two fixed seeds, one time budget
	$(BIN)/python -m contract.run

test: install-test ## Everything: lint, pytest, contract fuzzing
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) contract

sdk: install-test ## Typed Python client from the spec (openapi-python-client) into build/sdk/python
	rm -rf build/sdk/python
	$(BIN)/openapi-python-client generate --path spec/openapi.yaml --output-path build/sdk/python \
	  --config spec/clients/python.yaml --fail-on-warning
	@echo "pip install -e build/sdk/python, then: from petstore_client import Client"

bench: install-test ## Throughput vs a Starlette ceiling and a FastAPI peer, workers, targets (BIG=1: 1M pets)
	BENCH_BIG=$(BIG) $(BIN)/python -m bench.run

clean: ## Remove the venv, node tools and local data
	rm -rf $(VENV) node_modules var reports .mypy_cache .ruff_cache .pytest_cache
