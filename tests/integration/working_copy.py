"""A copy of the repository as a developer's working copy holds it: the tracked files, with make dev's .dev/ (and a
secret in it), the projects' CA certificates and a stale __pycache__; for the tests of what a deployment packages
(test_package.py, test_gcf_source.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.helpers import ROOT

SECRET = "a local secret that must not be packaged"


def make_working_copy(copy: Path, *, certs: bool = True) -> Path:
    """The tracked files of the repository copied into `copy`, plus .dev/, certs/ (unless `certs` is false) and a
    stale shared/__pycache__."""
    copy.mkdir(parents=True, exist_ok=True)
    git = ["git", "ls-files", "-z"]
    tracked = subprocess.run(git, cwd=ROOT, capture_output=True, check=True).stdout  # noqa: S603
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            (copy / name).write_bytes((ROOT / name).read_bytes())
    (copy / ".dev").mkdir()
    (copy / ".dev" / "project_b_jwt_secret").write_text(SECRET)
    if certs:
        (copy / "certs").mkdir()
        (copy / "certs" / "project-a-ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (copy / "shared" / "__pycache__").mkdir(exist_ok=True)
    (copy / "shared" / "__pycache__" / "config.cpython-311.pyc").write_bytes(b"stale")
    return copy


def holding(directory: Path, text: str) -> list[Path]:
    """The files under `directory` whose bytes contain `text`."""
    return [path for path in directory.rglob("*") if path.is_file() and text.encode() in path.read_bytes()]
