# trikchi: `make run` starts the service, `make test` runs every check.
# Both create the virtualenv and install what they need on a fresh machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
WEB_HOST ?= 127.0.0.1
WEB_PORT ?= 8001

.PHONY: run test bench web lint format system-deps node-deps clean translations messages console

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# Spectral (OpenAPI lint), jose (an independent JWT verifier) and oidc-provider (a real OpenID
# Connect provider for the social sign-in tests) from npm, exactly as
# package-lock.json says; again only when the lockfile or package.json is newer than what
# npm ci last installed.
node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20 and npm" >&2; exit 1; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

## node-deps: the npm tools the tests use (Spectral, jose, oidc-provider) and the console's
##            build (esbuild, uPlot)
node-deps: node_modules/.package-lock.json

## console: build the staff console (console/src -> trikchi/console/static, committed: `make run`
##          needs no node; tests/test_console.py checks the committed files are a fresh build)
console: node-deps
	node console/build.mjs

# The message catalogs (uz, ru, en), compiled from the .po files in the repository.
CATALOGS := $(wildcard trikchi/translations/*/LC_MESSAGES/messages.po)
# Where error messages are written: markers and the error classes that take a message.
MESSAGE_KEYWORDS := -k N_ -k Unauthorized -k Forbidden -k NotFound -k Conflict -k ValidationFailed \
	-k ServiceUnavailable -k AppError -k ValidationError

## translations: compile the message catalogs (.po -> .mo)
translations: $(CATALOGS:.po=.mo)

trikchi/translations/%/LC_MESSAGES/messages.mo: trikchi/translations/%/LC_MESSAGES/messages.po $(VENV)/.runtime
	$(BIN)/pybabel compile --statistics -d trikchi/translations -l $*

## messages: extract the messages to messages.pot and merge them into every catalog
messages: $(VENV)/.runtime
	$(BIN)/pybabel extract -F babel.cfg $(MESSAGE_KEYWORDS) --no-location --sort-output \
		--project trikchi -o trikchi/translations/messages.pot .
	$(BIN)/pybabel update -i trikchi/translations/messages.pot -d trikchi/translations --no-fuzzy-matching --ignore-obsolete

## run: install, migrate the embedded SQLite database, start the development server on
##      HOST:PORT (127.0.0.1:5000) and, beside it, the outbox worker (mails are logged without
##      MAIL_SERVER; webhooks go to WEBHOOK_URLS). Both stop together however make is stopped
##      (Ctrl-C, SIGTERM or SIGHUP to make, or the server exiting): the server runs in the
##      background and the shell waits for it, so a trapped signal is handled at once (a shell
##      waiting on a foreground command runs no trap until that command ends).
run: $(VENV)/.runtime translations
	$(BIN)/flask db upgrade
	$(BIN)/flask worker & worker=$$!; \
	$(BIN)/flask run --host $(HOST) --port $(PORT) & server=$$!; \
	trap 'kill $$server $$worker 2>/dev/null; wait' EXIT; \
	trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; \
	wait $$server

## web: serve the reference frontend (examples/web) on WEB_HOST:WEB_PORT (127.0.0.1:8001), e.g.
##      make web WEB_PORT=8002; run the API with CORS_ORIGINS=http://127.0.0.1:8001 make run.
##      The page calls http://<its host>:5000 unless opened with ?api=<the API's base URL>.
web:
	$(PYTHON) -m http.server $(WEB_PORT) --bind $(WEB_HOST) --directory examples/web

## system-deps: the servers the tests start (PostgreSQL), from Debian's packages if missing
system-deps:
	bash scripts/system-deps.sh

## lint: ruff lint and format check, and the layering contract (import-linter, pyproject.toml)
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

## test: lint, then the whole suite on SQLite and on a throwaway PostgreSQL server; in one process
##       unless TEST_WORKERS says how many (pytest-xdist, e.g. TEST_WORKERS=2 or auto, at most 4):
##       each process then has its own PostgreSQL and Redis servers and runs a whole test file at a
##       time (a file's module fixtures and the order of its tests stay as written).
TEST_WORKERS ?= 0
test: $(VENV)/.dev node-deps system-deps lint translations
	$(BIN)/python -m pytest --numprocesses $(TEST_WORKERS) --maxprocesses 4 --dist loadfile

# The bench's peers, each in a venv of its own (bench/.venvs/NAME, from bench/requirements/NAME.txt),
# never in the project's venv; again only when the requirement file is newer than the install.
BENCH_VENVS := seed fastapi-users flask-security allauth

bench/.venvs/%/.installed: bench/requirements/%.txt
	test -x bench/.venvs/$*/bin/python || $(PYTHON) -m venv bench/.venvs/$*
	bench/.venvs/$*/bin/python -m pip install --quiet --upgrade pip
	bench/.venvs/$*/bin/python -m pip install --quiet -r $<
	touch $@

## bench: trikchi under gunicorn (production settings) beside the seed's stack, fastapi-users,
##        Flask-Security-Too, django-allauth headless and the bare Flask, FastAPI and Django
##        endpoints, one server at a time, on SQLite, driven by wrk (docs/performance.md)
bench: $(VENV)/.dev $(BENCH_VENVS:%=bench/.venvs/%/.installed)
	bash scripts/system-deps.sh wrk
	$(BIN)/python bench/run.py

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
