"""When Project A stays unavailable, the client id goes to the SQS retry queue (moto) and replays cleanly."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from shared.models import QueuedSync
from shared.wiring import sync_service
from tests.conftest import Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session_faults import UNREACHABLE
from tests.integration.test_project_b_webhook import assert_matches_project_b, deliver, payload
from tests.random_refs import random_name


@pytest.fixture
def queue_url(aws: Any) -> str:
    return aws.create_queue(QueueName=f"sync-retry-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def messages(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    return sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
    ).get("Messages", [])


def test_the_client_id_is_queued_when_project_a_is_down_and_its_replay_converges(
    aws: Any, queue_url: str, reconfigure: Callable[..., None], db: Databases, projects: Any
) -> None:
    client_id = uuid.uuid4()
    email = f"{client_id.hex}@example.test"
    db.add_project_b_client(client_id, random_name(), email)
    body = json.dumps(payload("INSERT", client_id, name="Whole Row", email=email, encrypted_password="$2a$10$x"))
    reconfigure(
        PROJECT_A_DB_URL=UNREACHABLE, SYNC_RETRY_QUEUE_URL=queue_url, DB_POOL_TIMEOUT_SECONDS="0.3", RETRY_ATTEMPTS="2"
    )

    response = deliver(function_client("project_b_webhook"), body)

    assert response.status_code == 202
    assert response.json == {"queued": True}
    queued = messages(aws, queue_url)
    assert len(queued) == 1
    assert json.loads(queued[0]["Body"]) == {"client_id": str(client_id), "table": "public.profiles", "type": "INSERT"}
    assert queued[0]["MessageAttributes"]["source"]["StringValue"] == "project_b_webhook"
    assert db.client(client_id) is None

    reconfigure(PROJECT_A_DB_URL=projects.project_a_functions_url)
    message = QueuedSync.model_validate_json(queued[0]["Body"])
    assert sync_service().sync_client(message.client_id).outcome == "inserted"
    assert_matches_project_b(db, client_id)
    assert sync_service().sync_client(message.client_id).outcome == "unchanged"


def test_without_a_queue_an_unavailable_project_is_503(reconfigure: Callable[..., None], db: Databases) -> None:
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name(), f"{client_id.hex}@example.test")
    reconfigure(PROJECT_A_DB_URL=UNREACHABLE, DB_POOL_TIMEOUT_SECONDS="0.3", RETRY_ATTEMPTS="2")

    response = deliver(function_client("project_b_webhook"), payload("INSERT", client_id))

    assert response.status_code == 503
    assert response.json["error"]["code"] == "upstream_unavailable"
    assert "Retry-After" in response.headers
    assert db.client(client_id) is None


def test_when_the_queue_refuses_too_the_answer_is_503(
    aws: Any, reconfigure: Callable[..., None], db: Databases
) -> None:
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name(), f"{client_id.hex}@example.test")
    missing_queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/no-such-queue"
    reconfigure(
        PROJECT_A_DB_URL=UNREACHABLE,
        SYNC_RETRY_QUEUE_URL=missing_queue,
        DB_POOL_TIMEOUT_SECONDS="0.3",
        RETRY_ATTEMPTS="2",
    )
    response = deliver(function_client("project_b_webhook"), payload("INSERT", client_id))
    assert response.status_code == 503
    assert response.json["error"]["code"] == "upstream_unavailable"
    assert db.client(client_id) is None


def test_a_queued_sync_without_a_queue_or_with_sqs_refusing_is_only_logged(
    aws: Any, queue_url: str, reconfigure: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    client_id = uuid.uuid4()
    assert sync_service().queue_sync(client_id, reason="invite_email_in_use") is False  # no queue configured

    reconfigure(SYNC_RETRY_QUEUE_URL="https://sqs.eu-west-1.amazonaws.com/123456789012/no-such-queue")
    assert sync_service().queue_sync(client_id, reason="invite_email_in_use") is False
    assert any('"event": "sync_not_queued"' in record.getMessage() for record in caplog.records)

    reconfigure(SYNC_RETRY_QUEUE_URL=queue_url)
    assert sync_service().queue_sync(client_id, reason="invite_email_in_use") is True
    (queued,) = messages(aws, queue_url)
    assert json.loads(queued["Body"]) == {"client_id": str(client_id), "table": "auth.users", "type": "UPDATE"}
    assert queued["MessageAttributes"]["reason"]["StringValue"] == "invite_email_in_use"
