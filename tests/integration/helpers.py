"""Calling the functions the two ways they are deployed: functions-framework and AWS Lambda."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import functions_framework
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"


def function_client(name: str) -> FlaskClient:
    """A test client of functions/<name>/main.py, loaded as functions-framework serves it."""
    app = functions_framework.create_app(target=name, source=str(ROOT / "functions" / name / "main.py"))
    return app.test_client()


def lambda_event(name: str, *, body: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """tests/events/<name>.json with the given body and extra headers."""
    event = json.loads((EVENTS / f"{name}.json").read_text())
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    event["headers"].update(headers or {})
    return event
