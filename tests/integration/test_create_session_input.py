"""create_session refuses bad requests with a clear JSON error and writes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session import STARTS_AT, THERAPIST, book

pytestmark = pytest.mark.usefixtures("backend")

JANE_DOE = "aaaaaaaa-0000-4000-8000-000000000001"


@pytest.fixture
def client(projects: Any) -> FlaskClient:
    return function_client("create_session")


def valid_body(**changes: Any) -> dict[str, Any]:
    return {"client_id": str(uuid.uuid4()), "starts_at": STARTS_AT, **changes}


BAD_BODIES: list[tuple[str, Any, list[str]]] = [
    ("malformed json", b'{"client_id": ', []),
    ("not an object", b"[1, 2]", []),
    ("empty body", b"", []),
    ("missing client_id", {"starts_at": STARTS_AT}, ["client_id"]),
    ("missing starts_at", {"client_id": JANE_DOE}, ["starts_at"]),
    ("bad uuid", valid_body(client_id="not-a-uuid"), ["client_id"]),
    ("uuid as number", valid_body(client_id=12345), ["client_id"]),
    ("time without offset", valid_body(starts_at="2026-12-01T10:00:00"), ["starts_at"]),
    ("time not a time", valid_body(starts_at="tomorrow"), ["starts_at"]),
    ("time as number", valid_body(starts_at=1795600800), ["starts_at"]),
    ("time after year 9999 in UTC", valid_body(starts_at="9999-12-31T23:00:00-14:00"), ["starts_at"]),
    ("time before year 1 in UTC", valid_body(starts_at="0001-01-01T00:00:00+14:00"), ["starts_at"]),
    ("duration as string", valid_body(duration_minutes="50"), ["duration_minutes"]),
    ("duration as bool", valid_body(duration_minutes=True), ["duration_minutes"]),
    ("duration zero", valid_body(duration_minutes=0), ["duration_minutes"]),
    ("duration over 600", valid_body(duration_minutes=601), ["duration_minutes"]),
    ("duration fraction", valid_body(duration_minutes=50.5), ["duration_minutes"]),
    ("notes too long", valid_body(notes="x" * 10_001), ["notes"]),
    ("notes not text", valid_body(notes=["a"]), ["notes"]),
    ("therapist_id in body", valid_body(therapist_id=str(THERAPIST)), ["therapist_id"]),
    ("unknown field", valid_body(colour="blue"), ["colour"]),
    ("two bad fields", valid_body(client_id="x", duration_minutes=-1), ["client_id", "duration_minutes"]),
]


@pytest.mark.parametrize(("case", "body", "fields"), BAD_BODIES, ids=[case for case, _, _ in BAD_BODIES])
def test_bad_body_is_400_naming_the_fields_and_writes_nothing(
    client: FlaskClient, db: Databases, token: Callable[..., str], case: str, body: Any, fields: list[str]
) -> None:
    before = db.counts()
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    response = client.post(
        "/", data=data, content_type="application/json", headers={"Authorization": f"Bearer {token(THERAPIST)}"}
    )

    assert response.status_code == 400, response.json
    error = response.json["error"]
    assert error["code"] == "invalid_request"
    assert error["message"]
    assert error.get("fields", []) == fields
    for field in fields:
        assert field in error["message"]
    assert db.counts() == before


def test_bad_idempotency_key_is_400(client: FlaskClient, db: Databases, token: Callable[..., str]) -> None:
    before = db.counts()
    response = client.post(
        "/",
        json=valid_body(client_id=JANE_DOE),
        headers={"Authorization": f"Bearer {token(THERAPIST)}", "Idempotency-Key": "x" * 256},
    )
    assert response.status_code == 400
    assert response.json["error"]["fields"] == ["Idempotency-Key"]
    assert db.counts() == before


def test_body_over_64_kib_is_413(client: FlaskClient, db: Databases, token: Callable[..., str]) -> None:
    before = db.counts()
    response = client.post(
        "/",
        data=json.dumps(valid_body(notes="x" * (65 * 1024))),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token(THERAPIST)}"},
    )
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"
    assert db.counts() == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(
    client: FlaskClient, db: Databases, token: Callable[..., str], content_type: str | None
) -> None:
    before = db.counts()
    headers = {"Authorization": f"Bearer {token(THERAPIST)}"}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post("/", data=json.dumps(valid_body()), headers=headers)
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"
    assert db.counts() == before


def test_json_with_charset_is_accepted(client: FlaskClient, token: Callable[..., str]) -> None:
    response = client.post(
        "/",
        data=json.dumps(valid_body(client_id=JANE_DOE)),
        headers={"Authorization": f"Bearer {token(THERAPIST)}", "Content-Type": "application/json; charset=utf-8"},
    )
    # Jane Doe is the seed's client in the dev stack only; here she exists in neither test project.
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_wrong_method_is_405(client: FlaskClient, db: Databases, token: Callable[..., str], method: str) -> None:
    before = db.counts()
    response = client.open("/", method=method, headers={"Authorization": f"Bearer {token(THERAPIST)}"})
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "POST"
    assert db.counts() == before


@pytest.mark.parametrize(
    "notes",
    [b'"a\\u0000b"', b'"\\u0000"', b'"a\\\\\\u0000b"', b'"a\x00b"'],
    ids=["escape", "escape alone", "escape after an escaped backslash", "raw byte"],
)
@pytest.mark.parametrize("where", ["project_a", "project_b"])
def test_nul_in_notes_is_400_and_writes_nothing(
    client: FlaskClient, db: Databases, token: Callable[..., str], notes: bytes, where: str
) -> None:
    client_id = uuid.uuid4()
    if where == "project_a":
        db.add_project_a_client(client_id, THERAPIST, "Nul Test")
    else:
        db.add_project_b_client(client_id, "Nul Test", f"{client_id.hex}@example.test")
    data = json.dumps(valid_body(client_id=str(client_id), notes="NOTES")).encode().replace(b'"NOTES"', notes)
    before = db.counts()

    response = client.post(
        "/", data=data, content_type="application/json", headers={"Authorization": f"Bearer {token(THERAPIST)}"}
    )

    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_request"
    assert "NUL" in response.json["error"]["message"]
    assert db.counts() == before


def test_an_escaped_backslash_before_u0000_is_text(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, THERAPIST, "Backslash Test")

    response = book(client, token(THERAPIST), client_id, notes="C:\\u0000")

    assert response.status_code == 201, response.json
    assert response.json["session"]["notes"] == "C:\\u0000"


def test_an_offset_postgres_does_not_take_is_booked_in_utc(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    # Python and RFC 3339 take offsets up to ±23:59, Postgres's timestamptz only up to ±15:59 (found by the
    # contract fuzz test: the client backend sent the text as it came, and Postgres refused it with a 500).
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, "Far Offset", f"{client_id.hex[:8]}@example.test")

    response = book(client, token(THERAPIST), client_id, starts_at="2031-07-14T00:19:42-19:37")

    assert response.status_code == 201, response.json
    assert response.json["session"]["starts_at"] == "2031-07-14T19:56:42Z"
