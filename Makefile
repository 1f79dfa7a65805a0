# Every target sets up what it needs: a fresh clone runs `make demo` or `make test` directly.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/stream_hello.py

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m pytest
