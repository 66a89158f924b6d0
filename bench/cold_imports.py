"""The cold import of each backend: its store module and its driver, each run in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.report.backends import ColdImport
from bench.stack import ROOT

# What both backends' store modules import before their own: settings, models, ports, retries, answers.
SHARED = ("shared.config", "shared.models", "shared.ports", "shared.retry", "shared.errors", "shared.stores.answers")
BACKENDS = {
    "direct": ("shared.stores.postgres", "psycopg", "psycopg_pool"),
    "client": ("shared.stores.rpc", "httpx"),
}

_SCRIPT = """
import importlib, json, sys, time
shared, backend = json.loads(sys.argv[1]), json.loads(sys.argv[2])
began = time.perf_counter()
for name in shared:
    importlib.import_module(name)
middle = time.perf_counter()
for name in backend:
    importlib.import_module(name)
ended = time.perf_counter()
print(json.dumps([ended - began, ended - middle]))
"""


def import_once(modules: tuple[str, ...]) -> tuple[float, float]:
    """Seconds to import SHARED then `modules` in a new interpreter, and of those the part of `modules`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _SCRIPT, json.dumps(SHARED), json.dumps(modules)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    whole, own = json.loads(out)
    return float(whole), float(own)


def measure_cold_imports(runs: int) -> list[ColdImport]:
    """`runs` imports of each backend, alternating, after one not measured each (the files in the page cache and
    their bytecode compiled, as in a deployed package)."""
    for modules in BACKENDS.values():
        import_once(modules)
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in BACKENDS}
    for run in range(runs):
        keys = list(BACKENDS) if run % 2 == 0 else list(BACKENDS)[::-1]
        for key in keys:
            times[key].append(import_once(BACKENDS[key]))
    return [
        ColdImport(
            backend=key,
            modules=", ".join(f"`{name}`" for name in BACKENDS[key]),
            seconds=[whole for whole, _ in times[key]],
            own_seconds=[own for _, own in times[key]],
        )
        for key in BACKENDS
    ]
