# Every target sets up what it needs: a fresh clone runs `make demo` or `make test` directly.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.installed-base
STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench browser redis-server setup test-oldest astrbot-env astrbot-demo mutate

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

# Debian's chromium and chromedriver for the browser tests, and nodejs for the Markdown
# renderer tests; skipped (and those tests skip with the reason) where we are not root
# and cannot install them.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-wqy-microhei >/dev/null) \
		|| echo "WARNING: could not install chromium: browser tests will skip"; \
	else echo "note: chromium not installed and not root: browser tests will skip"; fi
	@if command -v node >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs >/dev/null) \
		|| echo "WARNING: could not install nodejs: the Markdown renderer tests will skip"; \
	else echo "note: node not installed and not root: the Markdown renderer tests will skip"; fi

# Debian's redis-server for tests/redis (they start their own on a free loopback port,
# and skip with the reason where it is missing).
redis-server:
	@if command -v redis-server >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null) \
		|| echo "WARNING: could not install redis-server: tests/redis will skip"; \
	else echo "note: redis-server not installed and not root: tests/redis will skip"; fi

# AstrBot is too heavy for the test venv (~150 packages): it gets its own, cached by a
# stamp named after the pinned version (bump ASTRBOT_VERSION to reinstall; a changed
# pyproject.toml reinstalls yunhu-stream into it). When it cannot be installed, the
# reason goes to .astrbot-env-unavailable and the AstrBot tests skip with it.
ASTRBOT_VERSION := 4.14.6
ASTRBOT_VENV := .venv-astrbot
ASTRBOT_STAMP := $(ASTRBOT_VENV)/.installed-$(ASTRBOT_VERSION)

$(ASTRBOT_STAMP): pyproject.toml
	@rm -f .astrbot-env-unavailable $(ASTRBOT_VENV)/.installed-*
	@if ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then \
		echo "AstrBot needs Python >= 3.10; $(PY) is older" > .astrbot-env-unavailable; \
	elif ($(PY) -m venv $(ASTRBOT_VENV) && $(ASTRBOT_VENV)/bin/pip install -q --upgrade pip \
			&& $(ASTRBOT_VENV)/bin/pip install -q astrbot==$(ASTRBOT_VERSION) -e .) \
			> .venv-astrbot.log 2>&1; then \
		touch $@; \
	else \
		echo "pip install astrbot==$(ASTRBOT_VERSION) failed: $$(tail -n 2 .venv-astrbot.log | tr '\n' ' ')" \
			> .astrbot-env-unavailable; \
		echo "WARNING: could not install AstrBot (.venv-astrbot.log): the AstrBot tests will skip"; \
	fi

astrbot-env: $(ASTRBOT_STAMP)

# AstrBot with the adapter, the emulator and the fake LLM: one streamed reply, live page.
astrbot-demo: $(STAMP) $(ASTRBOT_STAMP)
	$(BIN)/python examples/astrbot_demo/demo.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench
	$(BIN)/mypy

test: $(STAMP) browser redis-server astrbot-env lint
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory test-oldest

# The core contract (streamer, faults, reply features, public API) on Python 3.10.
test-oldest:
	@if [ -z "$(PY_OLDEST)" ]; then echo "note: no Python 3.10 here: skipping the oldest-Python run"; exit 0; fi; \
	[ -x .venv-oldest/bin/python ] || $(PY_OLDEST) -m venv .venv-oldest; \
	.venv-oldest/bin/pip install -q -e . pytest pytest-timeout hypothesis && \
	.venv-oldest/bin/python -m pytest -q -p no:cacheprovider tests/core tests/test_public_api.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Mutation testing of the core (docs/testing.md): slow, so not part of `make test`.
# MUTATE=src/yunhu_stream/_retry.py limits it to some modules (a glob list).
MUTATE ?=
mutate: $(STAMP) redis-server
	$(BIN)/pip install -q -e '.[mutate]'
	rm -rf mutants
	$(BIN)/python tests/mutation_score.py $(MUTATE)
