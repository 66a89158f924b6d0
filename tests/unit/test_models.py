"""The request and message models, without a database."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from shared.models import BackfillRange, CreateSessionRequest, WebhookEvent


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


LOW, MIDDLE, HIGH = (uuid.UUID(int=value) for value in (1, 2**127, 2**128 - 2))


@pytest.mark.parametrize(
    ("start", "end", "cursor"),
    [(LOW, HIGH, None), (LOW, HIGH, LOW), (LOW, HIGH, MIDDLE), (LOW, HIGH, HIGH), (MIDDLE, MIDDLE, MIDDLE)],
)
def test_a_backfill_range_takes_a_cursor_from_start_to_end(
    start: uuid.UUID, end: uuid.UUID, cursor: uuid.UUID | None
) -> None:
    job = BackfillRange(kind="backfill_range", start=start, end=end, cursor=cursor)
    assert (job.start, job.end, job.cursor) == (start, end, cursor)


@pytest.mark.parametrize(
    ("start", "end", "cursor", "says"),
    [
        (HIGH, LOW, None, "start is after end"),
        (MIDDLE, HIGH, LOW, "cursor is outside"),
        (LOW, MIDDLE, HIGH, "cursor is outside"),
    ],
)
def test_a_backfill_range_backwards_or_with_a_cursor_outside_it_is_refused(
    start: uuid.UUID, end: uuid.UUID, cursor: uuid.UUID | None, says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        BackfillRange(kind="backfill_range", start=start, end=end, cursor=cursor)
