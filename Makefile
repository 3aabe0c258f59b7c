# The two commands of README.md: `make run` and `make test`. Each makes its own
# virtual environment in .venv, so a fresh machine needs only python3 (and make).

PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 5000
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test browser idp bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.runtime-installed

## Set up the embedded default (SQLite + Whoosh + the job queue in instance/), add demo
## data, serve, and run one worker beside the web server.
## Development settings: cookies work over plain HTTP on this machine.
run: export PORTAL_ENV ?= development
run: export PORTAL_BASE_URL ?= http://$(HOST):$(PORT)
run: $(VENV)/.runtime-installed
	$(BIN)/portal seed-demo
	@echo ""
	@echo "The portal is at http://$(HOST):$(PORT)/  (Ctrl+C stops it)"
	@echo ""
	@# One worker beside the web server delivers the mail and runs the scheduled jobs.
	$(BIN)/portal worker --threads 2 & worker=$$!; \
	trap 'kill -INT $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/portal run --host $(HOST) --port $(PORT)

## Set up and run the whole test suite, browser tests included, after the lint.
## All tests, twice: on the embedded default, and on PostgreSQL + its search + Redis when
## they answer at TEST_POSTGRES / TEST_REDIS (a fresh database is made for the run). The two
## passes share nothing (own folders, own database, free ports), so they run side by side;
## the PostgreSQL pass, the longer, runs as two processes (its browser tests, and the rest),
## so that the two cores stay busy to the end. Its output is printed after the embedded
## pass's.
TEST_POSTGRES ?= postgresql+psycopg://postgres@127.0.0.1:5432
TEST_REDIS ?= redis://127.0.0.1:6379/0
# The PostgreSQL pass's browser tests run beside its other tests, on a Redis database of their
# own (each of the others empties the rate limits' keys as it starts; bench/load.py uses 1).
TEST_REDIS_BROWSER ?= $(patsubst %/0,%/2,$(TEST_REDIS))
test: lint browser idp
	@if $(BIN)/python -m tests.services "$(TEST_POSTGRES)" "$(TEST_REDIS)"; then \
	  log=$$(mktemp); tmp=$$(mktemp -d); blog=$$(mktemp); btmp=$$(mktemp -d); \
	  echo "== on the embedded default, and on PostgreSQL + Redis beside it =="; \
	  PORTAL_TEST_POSTGRES="$(TEST_POSTGRES)" PORTAL_TEST_REDIS="$(TEST_REDIS)" \
	    $(BIN)/pytest -p no:cacheprovider --basetemp="$$tmp" --ignore=tests/e2e \
	    >"$$log" 2>&1 & postgres=$$!; \
	  PORTAL_TEST_POSTGRES="$(TEST_POSTGRES)" PORTAL_TEST_REDIS="$(TEST_REDIS_BROWSER)" \
	    $(BIN)/pytest -p no:cacheprovider --basetemp="$$btmp" tests/e2e \
	    >"$$blog" 2>&1 & browser=$$!; \
	  $(BIN)/pytest; embedded=$$?; \
	  wait $$postgres; status=$$?; wait $$browser; browsed=$$?; \
	  echo "== on PostgreSQL + Redis, all but the browser tests =="; cat "$$log"; \
	  echo "== on PostgreSQL + Redis, the browser tests =="; cat "$$blog"; \
	  rm -rf "$$log" "$$tmp" "$$blog" "$$btmp"; \
	  [ $$embedded -eq 0 ] && [ $$status -eq 0 ] && [ $$browsed -eq 0 ]; \
	elif [ -n "$$PORTAL_TEST_REQUIRE_SERVICES" ]; then exit 1; \
	else $(BIN)/pytest; fi

## Debian's Chromium drives the browser tests (Playwright never downloads one).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	  else \
	    echo "Browser tests need Debian's chromium: sudo apt-get install -y chromium" >&2; exit 1; \
	  fi; \
	fi

## The single sign-on tests' OpenID provider (oidc-provider, pinned in tests/idp's lock file),
## installed from the npm registry with the machine's Node; the portal itself never needs Node.
idp: tests/idp/node_modules/.package-lock.json

tests/idp/node_modules/.package-lock.json: tests/idp/package-lock.json
	@command -v npm >/dev/null || { echo "The single sign-on tests need Node and npm: sudo apt-get install -y nodejs npm" >&2; exit 1; }
	npm ci --prefix tests/idp --no-audit --no-fund --loglevel=error
	touch $@

## Print the import benchmark's figures (10,000 generated case studies by default).
bench: $(VENV)/.dev-installed
	$(BIN)/python bench/import_bench.py

## ruff (style and common mistakes), then mypy (strict on portal/core and portal/search).
lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
