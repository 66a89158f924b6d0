"""The frontend example (examples/frontend/src/createSession.ts) type-checks against docs/openapi.json:
openapi-typescript makes its types of the document, then tsc checks the example with them, so a change of the
contract that the example does not follow (a field renamed, an error code added or dropped) fails here. It needs
Node.js and npm (CI has them) and, the first time or when the lock changes, the npm registry."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from tests.integration.helpers import ROOT

EXAMPLE = ROOT / "examples" / "frontend"
# Written after a successful `npm ci`, inside node_modules, so that it goes when npm ci deletes node_modules.
STAMP = EXAMPLE / "node_modules" / ".client-sync-installed"


def find_npm() -> str:
    found = shutil.which("npm")
    if found is None:
        pytest.fail("npm is not on PATH: the frontend example's check needs Node.js 20 or newer and npm")
    return found


def run(*command: str, timeout: float) -> None:
    """`command` in the example's directory; fails with its output when it fails or outlasts `timeout` seconds."""
    shown = " ".join(["npm", *command[1:]])
    try:
        done = subprocess.run(  # noqa: S603 - npm from PATH, with the arguments of this module
            command, cwd=EXAMPLE, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"`{shown}` took over {timeout:.0f} s:\n{expired.stdout or ''}{expired.stderr or ''}")
    if done.returncode != 0:
        pytest.fail(f"`{shown}` exited {done.returncode}:\n{done.stdout}{done.stderr}")


def install(npm: str) -> None:
    """`npm ci`, unless node_modules is already what package.json and package-lock.json pin: npm ci deletes
    node_modules first, every time."""
    pinned = hashlib.sha256(b"".join((EXAMPLE / name).read_bytes() for name in ("package.json", "package-lock.json")))
    if STAMP.is_file() and STAMP.read_text() == pinned.hexdigest():
        return
    run(npm, "ci", "--no-audit", "--no-fund", timeout=600)
    STAMP.write_text(pinned.hexdigest())


def test_the_frontend_example_type_checks_against_the_openapi_document() -> None:
    npm = find_npm()
    install(npm)
    run(npm, "run", "typecheck", timeout=420)  # src/api.ts generated from ../../docs/openapi.json, then tsc
