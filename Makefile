# Every target sets up what it needs: a fresh clone runs `make demo` or `make test` directly.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench browser setup test-oldest

# The oldest Python we support, when this machine has one (pyenv's, or python3.10 on PATH).
PY_OLDEST ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3) $(shell command -v python3.10 2>/dev/null))

# The package alone: all `make demo` needs.
$(BASE): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $(BASE)

# Plus the test tools and the real frameworks the tests drive.
$(STAMP): $(BASE)
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(BASE)
	$(BIN)/yunhu-stream demo

# Debian's chromium and chromedriver for the browser tests; skipped (and those tests
# skip with the reason) where we are not root and cannot install them.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-wqy-microhei >/dev/null) \
		|| echo "WARNING: could not install chromium: browser tests will skip"; \
	else echo "note: chromium not installed and not root: browser tests will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy

test: $(STAMP) browser lint
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory test-oldest

# The core contract (streamer, faults, reply features, public API) on Python 3.10.
test-oldest:
	@if [ -z "$(PY_OLDEST)" ]; then echo "note: no Python 3.10 here: skipping the oldest-Python run"; exit 0; fi; \
	[ -x .venv-oldest/bin/python ] || $(PY_OLDEST) -m venv .venv-oldest; \
	.venv-oldest/bin/pip install -q -e . pytest hypothesis && \
	.venv-oldest/bin/python -m pytest -q -p no:cacheprovider tests/core tests/test_public_api.py

bench: $(STAMP)
	$(BIN)/python bench/run.py
