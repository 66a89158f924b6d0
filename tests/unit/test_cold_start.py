"""What a cold start imports: each function's module loads none of the heavy clients it may never use (the
database driver and pool, boto3, rich, tenacity) nor the operators' tooling (ops/), and the webhook, which checks a
secret, not PyJWT either."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["psycopg", "psycopg_pool", "boto3", "botocore", "rich", "tenacity"]
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
