# TrainEasy: `make run` starts everything, `make test` runs the whole suite. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHROMIUM := /usr/bin/chromium

.PHONY: run lint unit test bench chaos clean-venv

$(VENV)/.python-ok:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
	  echo "error: Python 3.11+ is needed as '$(PYTHON)'. Install it, or run: make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)"; exit 1; }
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV) && $(PY) -m pip --version >/dev/null 2>&1; } || { \
	  rm -rf $(VENV); echo "error: could not create $(VENV) with pip; install the venv module (Debian: apt-get install python3-venv)"; exit 1; }
	@touch $@

$(VENV)/.installed: requirements.txt $(VENV)/.python-ok
	@echo "Installing runtime dependencies into $(VENV)…"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt || { \
	  echo "error: installing requirements.txt failed (see above); check network access to PyPI, then run make again"; exit 1; }
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	@echo "Installing test dependencies into $(VENV)…"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt || { \
	  echo "error: installing requirements-dev.txt failed (see above); check network access to PyPI, then run make again"; exit 1; }
	@touch $@

run: $(VENV)/.installed
	@$(PY) launcher.py

$(CHROMIUM):
	@echo "Installing Debian's chromium for the browser tests…"
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	 else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi || { \
	  echo "error: could not install chromium; install it yourself (apt-get install chromium) and rerun make test"; exit 1; }

# the fast loop, in order of speed: lint (seconds), unit (under a minute, no server), test (everything)
lint: $(VENV)/.installed-dev
	@$(PY) -m ruff check --quiet .
	@$(PY) -m ruff format --check --quiet .
	@$(PY) -m mypy

unit: $(VENV)/.installed-dev
	@$(PY) -m pytest tests/unit -m "not slow" $(PYTEST_ARGS)

test: lint $(CHROMIUM)
	@$(PY) -m pytest $(PYTEST_ARGS)

# every figure of issue 11 against its baseline, side by side, written to BENCHMARKS.md; BENCH_ARGS="--only NAME" or "--quick"
bench: $(VENV)/.installed-dev
	@$(PY) -m benchmarks $(BENCH_ARGS)

# faults against a real launched stack (kill -9 a worker, a Temporal restart, a crash loop, unwritable storage,
# 50 launches from 5 users); prints launched / completed / failed / lost per scenario. CHAOS_ARGS="--only NAME"
chaos: $(VENV)/.installed-dev
	@$(PY) -m chaos $(CHAOS_ARGS)

clean-venv:
	rm -rf $(VENV)
