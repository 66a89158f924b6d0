"""The request and message models, without a database."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from shared.models import CreateSessionRequest, WebhookEvent


def test_request_is_strict() -> None:
    request = CreateSessionRequest.model_validate_json(
        '{"client_id": "aaaaaaaa-0000-4000-8000-000000000001", "starts_at": "2026-12-01T10:00:00Z"}'
    )
    assert request.duration_minutes == 50
    assert request.starts_at.utcoffset() is not None
    with pytest.raises(ValidationError):
        CreateSessionRequest.model_validate_json(
            '{"client_id": "aaaaaaaa-0000-4000-8000-000000000001", "starts_at": "2026-12-01T10:00:00Z",'
            ' "duration_minutes": "50"}'
        )


def test_webhook_event_takes_the_id_from_record_or_old_record() -> None:
    client_id = uuid.uuid4()
    update = WebhookEvent.model_validate(
        {
            "type": "UPDATE",
            "table": "profiles",
            "schema": "public",
            "record": {"id": str(client_id), "name": "x"},
            "old_record": {"id": str(client_id)},
        }
    )
    delete = WebhookEvent.model_validate(
        {"type": "DELETE", "table": "users", "schema": "auth", "record": None, "old_record": {"id": str(client_id)}}
    )
    assert update.client_id == delete.client_id == client_id
    assert (update.source, delete.source) == ("public.profiles", "auth.users")


@pytest.mark.parametrize(
    "body",
    [
        {"type": "INSERT", "table": "profiles", "schema": "public", "record": None, "old_record": None},
        {
            "type": "DELETE",
            "table": "profiles",
            "schema": "public",
            "record": {"id": str(uuid.uuid4())},
            "old_record": None,
        },
        {
            "type": "UPSERT",
            "table": "profiles",
            "schema": "public",
            "record": {"id": str(uuid.uuid4())},
            "old_record": None,
        },
    ],
)
def test_webhook_event_rows_must_match_the_type(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WebhookEvent.model_validate(body)
