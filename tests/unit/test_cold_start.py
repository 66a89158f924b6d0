"""What a cold start imports: each function's module loads none of the heavy clients it may never use (the
database driver and pool, boto3, rich, tenacity) nor the operators' tooling (ops/), and the webhook, which checks a
secret, not PyJWT either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["psycopg", "psycopg_pool", "boto3", "botocore", "rich", "tenacity", "httpx", "postgrest"]
TOOLING = ["ops"]


def modules_loaded_by(module: str) -> set[str]:
    script = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {name.split(".")[0] for name in json.loads(out)}


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("functions.create_session.main", [*HEAVY, *TOOLING]),
        ("functions.sync_client.main", [*HEAVY, *TOOLING]),
        ("functions.project_b_webhook.main", [*HEAVY, *TOOLING, "jwt", "cryptography"]),
    ],
)
def test_a_cold_start_imports_no_heavy_client(module: str, absent: list[str]) -> None:
    assert modules_loaded_by(module).isdisjoint(absent)


def modules_loaded_by_wiring(env: dict[str, str]) -> set[str]:
    """The top-level modules loaded once shared.wiring has built both projects' stores under `env`."""
    script = "import sys, json; from shared import wiring; wiring.projects(); print(json.dumps(sorted(sys.modules)))"
    base = {key: value for key, value in os.environ.items() if not key.startswith(("PROJECT_A_", "PROJECT_B_"))}
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, env={**base, **env}
    ).stdout
    return {name.split(".")[0] for name in json.loads(out)}


DIRECT = {"PROJECT_A_DB_URL": "postgresql://u@localhost/a", "PROJECT_B_DB_URL": "postgresql://u@localhost/b"}
CLIENT = {
    "PROJECT_A_URL": "http://127.0.0.1:1",
    "PROJECT_A_SERVICE_ROLE_KEY": "key-a",
    "PROJECT_B_URL": "http://127.0.0.1:2",
    "PROJECT_B_SERVICE_ROLE_KEY": "key-b",
}


@pytest.mark.parametrize(
    ("env", "loaded", "absent"),
    [
        (DIRECT, {"psycopg"}, {"httpx", "postgrest"}),
        (CLIENT, {"httpx"}, {"psycopg", "psycopg_pool", "postgrest"}),
        ({**CLIENT, "PROJECT_A_DB_URL": DIRECT["PROJECT_A_DB_URL"]}, {"psycopg", "httpx"}, {"postgrest"}),
    ],
)
def test_each_backend_imports_its_client_only_when_a_project_uses_it(
    env: dict[str, str], loaded: set[str], absent: set[str]
) -> None:
    modules = modules_loaded_by_wiring(env)
    assert loaded <= modules
    assert modules.isdisjoint(absent)
