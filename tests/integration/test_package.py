"""What `sam build` packages: each function's artifact, built by the Makefile's build-<LogicalId> target as SAM's
makefile builder runs it (in a copy of the working copy, with ARTIFACTS_DIR), holds that function, the shared
package, certs/ and the runtime dependencies, and nothing else of a working copy that has .dev/, tests and the rest;
and the handler imports from the artifact alone. pip reads PyPI (or its cache)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.working_copy import SECRET, holding, make_working_copy

FUNCTIONS = {
    "CreateSessionFunction": "create_session",
    "ProjectBWebhookFunction": "project_b_webhook",
    "SyncClientFunction": "sync_client",
}
NOT_PACKAGED = {
    ".dev", "tests", "bench", "devtools", "ops", "db", "docs", "Makefile", "template.yaml", "requirements.txt",
    "requirements-dev.txt", "README.md", "pyproject.toml", ".ci",
}  # fmt: skip
DEV_ONLY = {"pytest", "moto", "ruff", "mypy", "pgserver", "cfnlint"}


@pytest.fixture(scope="module")
def working_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's files as a working copy holds them, with make dev's .dev/, the CA certificates and caches."""
    return make_working_copy(tmp_path_factory.mktemp("working-copy"))


@pytest.fixture(scope="module", params=sorted(FUNCTIONS))
def artifact(request: pytest.FixtureRequest, working_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param)
    env = {**os.environ, "ARTIFACTS_DIR": str(out), "PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)
    make = ["make", "-f", "Makefile", f"build-{request.param}"]  # as SAM's makefile builder runs it
    done = subprocess.run(make, cwd=working_copy, env=env, capture_output=True, text=True)  # noqa: S603
    assert done.returncode == 0, done.stderr
    return out


def test_an_artifact_holds_its_function_the_shared_package_certs_and_dependencies_only(artifact: Path) -> None:
    top = {path.name for path in artifact.iterdir()}
    name = FUNCTIONS[artifact.name.rstrip("0123456789")]

    assert {"functions", "shared", "certs", "psycopg", "pydantic", "tenacity", "functions_framework"} <= top
    assert not top & NOT_PACKAGED
    assert not top & DEV_ONLY
    assert [path.name for path in (artifact / "functions").iterdir()] == [name]
    assert not list((artifact / "shared").rglob("__pycache__"))
    assert holding(artifact, SECRET) == []


def test_the_handler_imports_from_the_artifact_alone(artifact: Path) -> None:
    """As the Lambda runtime does with the Handler, in an interpreter that sees the standard library and the
    artifact, nothing of this machine's packages."""
    name = FUNCTIONS[artifact.name.rstrip("0123456789")]
    script = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1]);"
        f"handler = importlib.import_module('functions.{name}.main').lambda_handler;"
        "assert callable(handler); print(handler.__module__)"
    )
    isolated = [sys.executable, "-I", "-S", "-c", script, str(artifact)]
    done = subprocess.run(isolated, capture_output=True, text=True, cwd=artifact)  # noqa: S603
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"functions.{name}.main"
