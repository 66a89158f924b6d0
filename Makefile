# The two commands of the README: `make dev` and `make test`. Each sets itself up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

export PYTHONPATH := $(CURDIR)

.PHONY: dev test sync lint bench clean openapi fuzz artifact gcf-source build-CreateSessionFunction build-ProjectBWebhookFunction \
	build-SyncClientFunction

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

# docs/openapi.json, the HTTP functions' contract, from the pydantic models (ops/openapi); a test fails when stale.
openapi: $(READY)
	$(PY) -m ops.openapi

# The contract fuzzed harder than `make test` does: 10,000 requests per operation and backend (FUZZ_SEED=<n> for
# other requests than the default seed's).
fuzz: $(READY)
	FUZZ_EXAMPLES=10000 FUZZ_SEED=$${FUZZ_SEED:-random} $(PY) -m pytest -p no:cacheprovider tests/integration/test_api_fuzz.py

lint: $(READY)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: $(READY)
	$(PY) -m bench.create_session
	$(PY) -m bench.create_session --callers 1 --db-rtt-ms 2
	$(PY) -m bench.project_b_webhook
	$(PY) -m bench.backfill
	$(PY) -m bench.not_found
	$(PY) -m bench.backends
	$(PY) -m bench.invites
	$(PY) -m bench.booking_time

# The frontend example (examples/frontend) type-checked against docs/openapi.json with openapi-typescript and tsc,
# as `make test` does (Node.js 20 and npm; `npm ci` the first time).
.PHONY: typecheck-example
typecheck-example: $(READY)
	$(PY) -m pytest -q -p no:cacheprovider tests/integration/test_frontend_example.py

clean:
	rm -rf $(VENV) .dev .pytest_cache .ruff_cache build examples/frontend/node_modules examples/frontend/src/api.ts

# `sam build` (template.yaml: BuildMethod makefile) runs build-<LogicalId> with ARTIFACTS_DIR: each function's
# artifact is its own functions/<name>, the shared package, certs/ when there is one (the projects' CA
# certificates, for the direct backend) and the runtime dependencies (requirements.txt) as Lambda's Python 3.11 on
# x86_64 takes them; nothing else of the working copy (tests, bench, devtools, ops, db, .dev).
LAMBDA_PIP_FLAGS := --platform manylinux2014_x86_64 --implementation cp --python-version 3.11 --only-binary=:all:
build-CreateSessionFunction:
	@$(MAKE) --no-print-directory artifact FUNCTION=create_session
build-ProjectBWebhookFunction:
	@$(MAKE) --no-print-directory artifact FUNCTION=project_b_webhook
build-SyncClientFunction:
	@$(MAKE) --no-print-directory artifact FUNCTION=sync_client
artifact:
	@test -n "$(ARTIFACTS_DIR)" || { echo "make artifact: ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 2; }
	@test -f "functions/$(FUNCTION)/main.py" || { echo "make artifact: no functions/$(FUNCTION)/main.py" >&2; exit 2; }
	mkdir -p "$(ARTIFACTS_DIR)"
	tar --exclude=__pycache__ --exclude='*.pyc' -cf - shared "functions/$(FUNCTION)" $$(test -d certs && echo certs) \
		| tar -xf - -C "$(ARTIFACTS_DIR)"
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt \
		--target "$(ARTIFACTS_DIR)" $(LAMBDA_PIP_FLAGS)

# Google Cloud Functions' Python runtime deploys a directory with main.py at its root, which defines the target,
# and requirements.txt next to it (docs/deployment.md, Google Cloud Functions). `make gcf-source FUNCTION=<name>`
# stages one in OUT (default build/gcf/<name>): functions/<name>/main.py as main.py, the shared package (which
# functions-framework finds next to main.py), requirements.txt, certs/ when there is one; nothing else of the working
# copy. OUT is replaced only when it is empty or an earlier staging (nothing but those and gcloud's .gcloudignore).
GCF_STAGED := main.py requirements.txt shared certs .gcloudignore
gcf-source: OUT ?= build/gcf/$(FUNCTION)
gcf-source:
	@test -f "functions/$(FUNCTION)/main.py" || { echo "make gcf-source: no functions/$(FUNCTION)/main.py (FUNCTION=create_session, project_b_webhook or sync_client)" >&2; exit 2; }
	@if [ -d "$(OUT)" ] && [ -n "$$(ls -A "$(OUT)")" ]; then \
		for name in $$(ls -A "$(OUT)"); do \
			case " $(GCF_STAGED) " in *" $$name "*) ;; \
			*) echo "make gcf-source: $(OUT) holds $$name: not an earlier staging, left alone" >&2; exit 2;; esac; \
		done; \
		test -f "$(OUT)/main.py" && test -d "$(OUT)/shared" || { echo "make gcf-source: $(OUT) is not an earlier staging, left alone" >&2; exit 2; }; \
	fi
	rm -rf "$(OUT)"
	mkdir -p "$(OUT)"
	cp "functions/$(FUNCTION)/main.py" "$(OUT)/main.py"
	cp requirements.txt "$(OUT)/requirements.txt"
	tar --exclude=__pycache__ --exclude='*.pyc' -cf - shared $$(test -d certs && echo certs) | tar -xf - -C "$(OUT)"
