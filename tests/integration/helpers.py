"""Calling the functions the two ways they are deployed: functions-framework and AWS Lambda."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import functions_framework
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"


def function_client(name: str) -> FlaskClient:
    """A test client of functions/<name>/main.py, loaded as functions-framework serves it."""
    app = functions_framework.create_app(target=name, source=str(ROOT / "functions" / name / "main.py"))
    return app.test_client()


def function_module(name: str) -> ModuleType:
    """functions/<name>/main.py imported under its own name, as the Lambda runtime imports a handler."""
    spec = importlib.util.spec_from_file_location(f"{name}_main", ROOT / "functions" / name / "main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lambda_event(name: str, *, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """tests/events/<name>.json with the given body and extra headers."""
    event = json.loads((EVENTS / f"{name}.json").read_text())
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    event["headers"].update(headers or {})
    return event


@contextmanager
def serve_function(name: str) -> Iterator[str]:
    """functions/<name>/main.py served over real HTTP on loopback (a random port); yields its URL."""
    from werkzeug.serving import make_server

    app = functions_framework.create_app(target=name, source=str(ROOT / "functions" / name / "main.py"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join(timeout=10)


class OneClientAtATime:
    """The configured stores, one client per call: what the sync does for a webhook event, step by step."""

    def __init__(self) -> None:
        from shared.wiring import projects

        self.project_a, self.project_b = projects()

    def read(self, client_id: Any) -> Any:
        (state,) = self.project_b.read_clients([client_id])
        return state

    def upsert(self, row: Any) -> Any:
        (applied,) = self.project_a.upsert_synced_clients([row])
        return applied

    def archive(self, client_id: Any, absent_since: Any) -> str:
        """Archive as after a read at `absent_since` that found no profile and no recorded deletion, or with
        the Absence a read gave."""
        from shared.ports import Absence

        absence = absent_since if isinstance(absent_since, Absence) else Absence(client_id, None, absent_since)
        (applied,) = self.project_a.archive_synced_clients([absence])
        return str(applied.outcome)
