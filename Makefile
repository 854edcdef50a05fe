# trikchi: `make run` starts the service, `make test` runs every check.
# Both create the virtualenv and install what they need on a fresh machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test bench web lint format system-deps node-deps clean

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Spectral (OpenAPI lint) and jose (an independent JWT verifier) from npm, exactly as
# package-lock.json says; again only when the lockfile or package.json is newer than what
# npm ci last installed.
node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20 and npm" >&2; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

## node-deps: the npm tools the tests use (Spectral, jose)
node-deps: node_modules/.package-lock.json

## run: install, migrate the embedded SQLite database, start the development server and, beside
##      it, the outbox worker (mails are logged without MAIL_SERVER; webhooks go to WEBHOOK_URLS)
run: $(VENV)/.runtime
	$(BIN)/flask db upgrade
	$(BIN)/flask worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT; \
	$(BIN)/flask run --host $(HOST) --port $(PORT)

## web: serve the reference frontend (examples/web) on 127.0.0.1:8001; run the API with
##      CORS_ORIGINS=http://127.0.0.1:8001 make run
web:
	$(PYTHON) -m http.server 8001 --bind 127.0.0.1 --directory examples/web

## system-deps: the servers the tests start (PostgreSQL), from Debian's packages if missing
system-deps:
	bash scripts/system-deps.sh

## lint: ruff lint and format check
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## test: lint, then the whole suite on SQLite and on a throwaway PostgreSQL server
test: $(VENV)/.dev node-deps system-deps lint
	$(BIN)/python -m pytest

## bench: the service under gunicorn (production settings) on SQLite and PostgreSQL, driven by wrk,
##        beside the seed's stack (FastAPI + uvicorn, bench/requirements.txt, bench-only)
bench: $(VENV)/.dev
	bash scripts/system-deps.sh wrk
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/run.py

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
