"""The Project B → Project A mapping and the request model, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.models import CreateSessionRequest, SourceClient, WebhookEvent, client_row_from_source

ATTRIBUTES = ("age", "gender_identity", "avatar_url")


def source(**changes: object) -> SourceClient:
    attributes = {"age": 35, "gender_identity": "female", "avatar_url": "https://example.com/a.png"}
    attributes.update({key: changes.pop(key) for key in ATTRIBUTES if key in changes})
    fields = {
        "id": uuid.uuid4(),
        "name": "Jane Doe",
        "email": "jane@example.com",
        "attributes": attributes,
        "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return SourceClient.model_validate({**fields, **changes})


def test_mapping_keeps_the_id_and_follows_the_design_document() -> None:
    client = source()
    row = client_row_from_source(client)
    assert row.id == client.id
    assert row.full_name == "Jane Doe"
    assert row.email == "jane@example.com"
    assert row.notes == "Synced from Project B. Age: 35, Gender: female"
    assert row.source_attributes == {"age": 35, "gender_identity": "female", "avatar_url": "https://example.com/a.png"}
    assert row.source_updated_at == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age", "gender", "notes"),
    [
        (None, "female", "Synced from Project B. Gender: female"),
        (35, None, "Synced from Project B. Age: 35"),
        (None, None, "Synced from Project B."),
        (0, "", "Synced from Project B. Age: 0"),
    ],
)
def test_notes_leave_out_missing_parts(age: int | None, gender: str | None, notes: str) -> None:
    assert client_row_from_source(source(age=age, gender_identity=gender)).notes == notes


def test_blank_name_and_email_are_handled() -> None:
    row = client_row_from_source(source(name="   ", email="  "))
    assert row.full_name == "Unnamed client"
    assert row.email is None


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
