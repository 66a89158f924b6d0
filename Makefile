# The two commands of the README: `make dev` and `make test`. Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

export PYTHONPATH := $(CURDIR)

.PHONY: dev test sync lint bench clean

$(READY): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# `make dev BACKEND=supabase`: the functions reach each project through its API (a local PostgREST stand-in), as
# the client backend does, instead of Postgres (docs/local-stack.md).
BACKEND ?= direct
dev: $(READY)
	$(PY) -m devtools.dev --backend $(BACKEND)

# A backfill of the local stack of `make dev` (running, in another terminal) with `python -m ops.cli`
# (docs/operations.md), over the backend the stack's functions use (DEV_BACKEND in its env file): as client_sync,
# or through the projects' APIs with their service-role keys. ARGS go to it, e.g. `make sync ARGS=--dry-run`.
DEV_DIR ?= .dev
sync: $(READY)
	@if [ ! -f "$(DEV_DIR)/env" ]; then \
		echo "make sync: $(DEV_DIR)/env is missing: start the local stack with 'make dev' (in another terminal) first" >&2; \
		exit 1; \
	fi
	@DEV_BACKEND=direct; set -a; . "$(DEV_DIR)/env"; set +a; \
	if [ "$$DEV_BACKEND" = supabase ]; then \
		unset PROJECT_A_DB_URL PROJECT_B_DB_URL; \
		export PROJECT_A_BACKEND=client PROJECT_B_BACKEND=client; \
	else \
		export PROJECT_A_DB_URL="$$FUNCTIONS_PROJECT_A_DB_URL" PROJECT_B_DB_URL="$$FUNCTIONS_PROJECT_B_DB_URL" \
			PROJECT_A_BACKEND=direct PROJECT_B_BACKEND=direct; \
	fi; \
	$(PY) -m ops.cli backfill $(ARGS) || { \
		status=$$?; \
		[ $$status -ne 1 ] || echo "make sync: it runs against the stack of 'make dev', which must be running" >&2; \
		exit $$status; }

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
	$(PY) -m bench.backfill
	$(PY) -m bench.not_found
	$(PY) -m bench.backends
	$(PY) -m bench.invites

clean:
	rm -rf $(VENV) .dev .pytest_cache .ruff_cache
