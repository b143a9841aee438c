# One-command set-up, run and test. Everything installs from the package registries.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= data/zone.gpkg
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: setup run info test test-fast sample assets clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

$(DB): $(VENV)/.installed $(wildcard data/shapefiles/*.shp)
	$(BIN)/zoneplan init --db $(DB) --force

run: setup $(DB)
	$(BIN)/zoneplan info --db $(DB)

info: setup $(DB)
	$(BIN)/zoneplan info --db $(DB)

test: setup
	$(BIN)/python -m pytest -q

sample: setup
	$(BIN)/python scripts/make_sample.py --out data/shapefiles

clean:
	rm -rf $(VENV) $(DB) .pytest_cache
