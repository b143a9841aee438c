# One-command set-up, run and test. Everything installs from the package registries
# (PyPI for Python, npm for the browser libraries the web app serves itself).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= data/zone.gpkg
HOST ?= 127.0.0.1
PORT ?= 5000
NPM ?= npm
ASSETS := web/static/vendor/.installed

.PHONY: setup assets run serve info lint test test-fast test-browser sample messages clean

## setup: the virtualenv (editable install) and the self-hosted browser assets
setup: $(VENV)/.installed $(ASSETS)

$(VENV)/.installed: setup.cfg constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

assets: $(ASSETS)

# npm installs the exact versions of web/assets/package-lock.json; web.vendor copies the files
# the pages use into web/static/vendor/ (git-ignored) and the app refuses to start without them.
$(ASSETS): web/assets/package.json web/assets/package-lock.json web/vendor.py | $(VENV)/.installed
	$(NPM) ci --prefix web/assets --ignore-scripts --no-audit --no-fund --loglevel=error
	$(BIN)/python -m web.vendor
	touch $@

# The store is built once; delete it (or run `zoneplan init --force`) to rebuild.
$(DB): | $(VENV)/.installed
	$(BIN)/zoneplan init --db $(DB)

## run: set everything up, then serve the sample zone at http://$(HOST):$(PORT)/
run: setup $(DB)
	$(BIN)/zoneplan serve --db $(DB) --host $(HOST) --port $(PORT)

serve: run

info: setup $(DB)
	$(BIN)/zoneplan info --db $(DB)

## lint: ruff (pyflakes, pycodestyle, import order, pyupgrade), ruff format check and mypy
## (strict on geo/ and planner/); config in pyproject.toml
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test: the linter, then the whole suite (browser tests skip when /usr/bin/chromium is absent)
test: setup lint
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser"

test-browser: setup
	ZONEPLAN_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q -m browser

sample: setup
	$(BIN)/python scripts/make_sample.py --out data/shapefiles

## messages: re-extract the UI strings and update/compile the catalogues (commit the .po and .mo)
messages: $(VENV)/.installed
	$(BIN)/pybabel -q extract -F babel.cfg -k _ -k N_ -k _l -k lazy_gettext --no-location \
		--sort-output --project zoneplan -o web/translations/messages.pot web planner usecases
	$(BIN)/pybabel -q update -i web/translations/messages.pot -d web/translations --no-fuzzy-matching
	$(BIN)/pybabel -q compile -d web/translations --statistics

clean:
	rm -rf $(VENV) $(DB) .pytest_cache web/assets/node_modules web/static/vendor
