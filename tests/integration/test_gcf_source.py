"""What `make gcf-source` stages for Google Cloud Functions, whose Python runtime deploys a directory with main.py at
its root: each function's main.py there, the shared package, requirements.txt and certs/ when the working copy has
one, nothing else of a working copy that has .dev/, tests and the rest; and functions-framework serves the target
from that directory alone, as Cloud Functions runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.working_copy import SECRET, holding, make_working_copy

FUNCTIONS = ("create_session", "project_b_webhook", "sync_client")
STAGED = {"main.py", "requirements.txt", "shared"}

# In the staged directory, with neither PYTHONPATH nor the current directory on sys.path (-I): functions-framework
# loads main.py and puts its directory on sys.path, which is how `import shared` must be found. A GET reaches the
# function's own handling, which answers 405 without needing any setting.
SERVE = """
import sys
import functions_framework
target = sys.argv[1]
app = functions_framework.create_app(target=target, source="main.py")
import main, shared
assert callable(getattr(main, target))
answer = app.test_client().get("/")
print(answer.status_code, main.__file__, shared.__file__)
"""


@pytest.fixture(scope="module")
def working_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_working_copy(tmp_path_factory.mktemp("working-copy"))


def gcf_source(working_copy: Path, function: str, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("PYTHONPATH", None)
    make = ["make", "--no-print-directory", "-C", str(working_copy), "gcf-source", f"FUNCTION={function}", f"OUT={out}"]
    return subprocess.run(make, env=env, capture_output=True, text=True)  # noqa: S603


@pytest.fixture(scope="module", params=FUNCTIONS)
def staged(request: pytest.FixtureRequest, working_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    function: str = request.param
    out = tmp_path_factory.mktemp("gcf") / function
    done = gcf_source(working_copy, function, out)
    assert done.returncode == 0, done.stderr
    return out


def test_the_staged_directory_holds_main_py_shared_requirements_and_certs_only(
    staged: Path, working_copy: Path
) -> None:
    assert {path.name for path in staged.iterdir()} == STAGED | {"certs"}
    assert (staged / "main.py").read_bytes() == (working_copy / "functions" / staged.name / "main.py").read_bytes()
    assert (staged / "requirements.txt").read_bytes() == (working_copy / "requirements.txt").read_bytes()
    sources = {path.relative_to(working_copy) for path in (working_copy / "shared").rglob("*.py")}
    assert {path.relative_to(staged) for path in (staged / "shared").rglob("*") if path.is_file()} == sources
    assert [path.name for path in (staged / "certs").iterdir()] == ["project-a-ca.crt"]
    assert holding(staged, SECRET) == []


def test_functions_framework_serves_the_target_from_the_staged_directory_alone(staged: Path) -> None:
    isolated = [sys.executable, "-I", "-c", SERVE, staged.name]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(staged)}
    done = subprocess.run(isolated, cwd=staged, env=env, capture_output=True, text=True)  # noqa: S603
    assert done.returncode == 0, done.stderr
    status, main, shared = done.stdout.split()[-3:]
    assert status == "405"
    assert Path(main) == staged / "main.py"
    assert Path(shared) == staged / "shared" / "__init__.py"


def test_without_certs_nothing_stands_in_for_them(tmp_path: Path) -> None:
    copy = make_working_copy(tmp_path / "copy", certs=False)
    done = gcf_source(copy, "create_session", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert {path.name for path in (tmp_path / "out").iterdir()} == STAGED


def test_a_second_staging_replaces_the_first_and_leaves_anything_else_alone(working_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "create_session"
    assert gcf_source(working_copy, "create_session", out).returncode == 0
    (out / ".gcloudignore").write_text("# gcloud writes this one\n")
    (out / "shared" / "left_over.py").write_text("")
    assert gcf_source(working_copy, "create_session", out).returncode == 0
    assert {path.name for path in out.iterdir()} == STAGED | {"certs"}
    assert not (out / "shared" / "left_over.py").exists()

    (out / "notes.txt").write_text("mine")
    refused = gcf_source(working_copy, "create_session", out)
    assert refused.returncode != 0
    assert "holds notes.txt" in refused.stderr
    assert (out / "notes.txt").read_text() == "mine"
    assert gcf_source(working_copy, "no_such_function", tmp_path / "other").returncode != 0
