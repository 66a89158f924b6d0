# The two commands of the README: `make dev` and `make test`. Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

export PYTHONPATH := $(CURDIR)

.PHONY: dev test lint bench clean

$(READY): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

dev: $(READY)
	$(PY) -m devtools.dev

test: $(READY)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

lint: $(READY)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(READY)
	$(PY) -m bench.create_session
	$(PY) -m bench.project_b_webhook

clean:
	rm -rf $(VENV) .dev .pytest_cache .ruff_cache
