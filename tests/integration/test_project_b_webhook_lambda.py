"""project_b_webhook through its AWS Lambda handler, with an API Gateway HTTP API v2 event."""

from __future__ import annotations

import json
import uuid
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import WEBHOOK_SECRET, Databases
from tests.integration.helpers import function_module, lambda_event
from tests.integration.test_create_session import new_project_b_client

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture(scope="module")
def function() -> ModuleType:
    return function_module("project_b_webhook")


def event_for(client_id: uuid.UUID, secret: str) -> dict[str, Any]:
    event = lambda_event("project_b_webhook", headers={"authorization": f"Bearer {secret}"})
    body = json.loads(event["body"])
    body["record"]["id"] = body["old_record"]["id"] = str(client_id)
    event["body"] = json.dumps(body)
    return event


def test_lambda_applies_an_update_event(function: ModuleType, projects: Any, db: Databases) -> None:
    client_id = new_project_b_client(db)
    result = function.lambda_handler(event_for(client_id, WEBHOOK_SECRET), None)
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"outcome": "inserted", "client_id": str(client_id)}
    assert db.client(client_id)["synced_from"] == "project_b"


def test_lambda_refuses_a_wrong_secret(function: ModuleType, projects: Any, db: Databases) -> None:
    client_id = new_project_b_client(db)
    result = function.lambda_handler(event_for(client_id, "not-the-secret"), None)
    assert result["statusCode"] == 401
    assert json.loads(result["body"])["error"]["code"] == "unauthorized"
    assert db.client(client_id) is None
