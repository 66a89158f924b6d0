"""create_session through its AWS Lambda handler, with API Gateway HTTP API v2 events from tests/events/."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import Databases
from tests.integration.helpers import function_module, lambda_event
from tests.integration.test_create_session import STARTS_AT, THERAPIST, new_project_b_client

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture(scope="module")
def function() -> ModuleType:
    return function_module("create_session")


def test_lambda_books_a_project_b_client(
    function: ModuleType, projects: Any, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    event = lambda_event(
        "create_session",
        body={"client_id": str(client_id), "starts_at": STARTS_AT},
        headers={"authorization": f"Bearer {token(THERAPIST)}", "idempotency-key": "lambda-1-" + client_id.hex},
    )

    result = function.lambda_handler(event, None)
    replay = function.lambda_handler(event, None)

    assert result["statusCode"] == 201
    assert result["headers"]["Content-Type"] == "application/json"
    body = json.loads(result["body"])
    assert body["client_synced"] is True
    assert body["session"]["client_id"] == str(client_id)
    assert json.loads(replay["body"])["session"]["id"] == body["session"]["id"]
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1


def test_lambda_accepts_a_base64_body(
    function: ModuleType, projects: Any, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    raw = json.dumps({"client_id": str(client_id), "starts_at": STARTS_AT}).encode()
    event = lambda_event("create_session", headers={"authorization": f"Bearer {token(THERAPIST)}"})
    event.update(body=base64.b64encode(raw).decode(), isBase64Encoded=True)

    assert function.lambda_handler(event, None)["statusCode"] == 201
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (lambda event: event["headers"].pop("authorization"), 401, "unauthorized"),
        (lambda event: event.update(body="{not json"), 400, "invalid_request"),
        (lambda event: event["headers"].update({"content-type": "text/plain"}), 415, "unsupported_media_type"),
        (lambda event: event["requestContext"]["http"].update(method="GET"), 405, "method_not_allowed"),
        (lambda event: event.update(body="x" * (64 * 1024 + 1)), 413, "payload_too_large"),
        (lambda event: event.update(body="%%%", isBase64Encoded=True), 400, "invalid_request"),
    ],
)
def test_lambda_errors_are_json(
    function: ModuleType,
    projects: Any,
    db: Databases,
    token: Callable[..., str],
    change: Callable[[dict[str, Any]], Any],
    status: int,
    code: str,
) -> None:
    client_id = new_project_b_client(db)  # a request that got through would copy it and book
    event = lambda_event(
        "create_session",
        body={"client_id": str(client_id), "starts_at": STARTS_AT},
        headers={"authorization": f"Bearer {token(THERAPIST)}"},
    )
    change(event)
    before = db.counts()

    result = function.lambda_handler(event, None)

    assert result["statusCode"] == status
    assert json.loads(result["body"])["error"]["code"] == code
    assert db.counts() == before
    assert db.client(client_id) is None
