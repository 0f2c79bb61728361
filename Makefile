# Studio9 — the two commands a new user needs:
#   make serve   install (edge) and run the all-in-one server on http://127.0.0.1:8080
#   make test    install (dev) and run lint, type checks and the whole test suite

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: serve test lint pytest docs bench clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Studio9 needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Marker files: reinstall only when pyproject.toml changes.
$(VENV)/.installed-edge: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-edge

serve: $(VENV)/.installed-edge
	$(BIN)/studio9 serve

test: lint pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest

# Rewrite the README's configuration table from the settings class.
docs: $(VENV)/.installed-edge
	$(BIN)/python -m studio9.config.reference README.md

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/http_baseline.py
	$(BIN)/python benchmarks/idle_memory.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
