# The commands the README names. `make run` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ASSETS := portal/static/dist/manifest.json
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test test-postgres bench lint assets clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(ASSETS): $(INSTALLED) node_modules/.installed portal/static/src/portal.scss
	npm run --silent build:css
	$(BIN)/portal build-assets

assets: $(ASSETS)

run: $(INSTALLED) $(ASSETS)
	$(BIN)/portal db-upgrade
	$(BIN)/portal demo-data
	$(BIN)/portal serve

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test: lint $(ASSETS)
	$(BIN)/pytest

test-postgres: $(INSTALLED) $(ASSETS)
	PORTAL_TEST_DATABASE_URL=$(PG_URL) $(BIN)/pytest

bench: $(INSTALLED) $(ASSETS)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) node_modules portal/static/dist instance .pytest_cache
