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
