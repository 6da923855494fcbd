# Continue verification. `make run` starts everything; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APP_PORT ?= 5000
EMULATOR_PORT ?= 5001

.DEFAULT_GOAL := help
.PHONY: help run cluster test test-fast test-faults test-browser lint base-deps run-deps system-deps deps bench clean \
	translations translations-extract translations-update

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: base-deps $(BIN)/.installed node_modules/.installed ## Install Python and npm dependencies

# Debian packages, installed only when missing (apt-get needs root; say what to install otherwise).
define apt_install
	export DEBIAN_FRONTEND=noninteractive; \
	if [ "$$(id -u)" != 0 ]; then echo "Please install as root: apt-get install $(1)" >&2; exit 1; fi; \
	apt-get update -q && apt-get install -y -q $(1)
endef

base-deps: ## Python venv support and Node.js/npm (what `make run` needs), from Debian if missing
	@missing=""; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then $(call apt_install,$$missing); fi

run-deps: ## Redis (the task broker `make run` starts), from Debian if missing
	@command -v redis-server >/dev/null || ( $(call apt_install,redis-server) ) \
		|| echo "No Redis: make run goes on without it (mail is then sent by the app process)" >&2

system-deps: ## Chromium, WebKitGTK's WebDriver + Xvfb, PostgreSQL, Redis, nginx and zbarimg (what the tests use), from Debian if missing
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v WebKitWebDriver >/dev/null || missing="$$missing webkit2gtk-driver"; \
	command -v Xvfb >/dev/null || missing="$$missing xvfb"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/lib/postgresql/15/bin/initdb ] || missing="$$missing postgresql"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v zbarimg >/dev/null || missing="$$missing zbar-tools"; \
	if [ -n "$$missing" ]; then $(call apt_install,$$missing); fi

# Languages: the .po catalogs are in git; the compiled .mo are built here (make run, make test).
translations: $(BIN)/.installed ## Compile the language catalogs (.po -> .mo)
	$(BIN)/python scripts/translations.py compile

translations-extract: $(BIN)/.installed ## Collect every translatable string into webapp/translations/messages.pot
	$(BIN)/python scripts/translations.py extract

translations-update: $(BIN)/.installed ## Merge new strings into each language's .po (then translate them)
	$(BIN)/python scripts/translations.py update

run: run-deps deps translations ## Start app (localhost:5000) + Persona emulator (localhost:5001) + Redis, Celery worker and beat + SQLite + demo data
	APP_PORT=$(APP_PORT) EMULATOR_PORT=$(EMULATOR_PORT) ./scripts/run-dev.sh

test: system-deps deps translations ## Install what the tests need and run all of them (SQLite, then PostgreSQL)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy webapp persona_emulator
	$(BIN)/bandit -q -r webapp persona_emulator
	$(BIN)/pytest
	TEST_DATABASE=postgresql $(BIN)/pytest -m "postgres_too"

cluster: system-deps deps translations ## Production shape on loopback: TLS balancer https://localhost:8443, 2 app instances, 2 workers, beat, PostgreSQL, Redis, emulator :5001
	$(BIN)/python -u scripts/cluster.py

test-faults: system-deps deps translations ## The fault suite alone (make test runs it too): prints journeys, emails, webhooks
	$(BIN)/pytest -m faults -s

test-fast: deps translations ## Unit and integration tests only, SQLite (no browser)
	$(BIN)/pytest -m "not browser"

lint: deps ## ruff, mypy and bandit
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy webapp persona_emulator
	$(BIN)/bandit -q -r webapp persona_emulator

bench: system-deps deps ## Benchmarks with their baselines (docs/PERFORMANCE.md): prints numbers, asserts nothing
	@command -v wrk >/dev/null || { $(call apt_install,wrk); }
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/load_bench.py

clean: ## Remove the local database, emulator state and outbox
	rm -rf instance/app.db instance/persona-emulator.db instance/persona-emulator.db-wal instance/persona-emulator.db-shm instance/outbox instance/celerybeat-schedule*
