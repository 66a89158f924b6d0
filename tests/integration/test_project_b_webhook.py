"""project_b_webhook through functions-framework: its contract, field ownership, archive and conflicts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import WEBHOOK_SECRET, Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session import THERAPIST, book, new_project_b_client, run_concurrently
from tests.random_refs import random_email, random_name

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def webhook(projects: Any) -> FlaskClient:
    return function_client("project_b_webhook")


def payload(
    event_type: str, client_id: Any, *, table: str = "profiles", schema: str = "public", **record: Any
) -> dict[str, Any]:
    """A payload shaped as supabase_functions.http_request() builds it."""
    row = {"id": str(client_id), **record}
    return {
        "type": event_type,
        "table": table,
        "schema": schema,
        "record": None if event_type == "DELETE" else row,
        "old_record": None if event_type == "INSERT" else row,
    }


def deliver(webhook: FlaskClient, body: Any, secret: str | None = WEBHOOK_SECRET, **options: Any) -> Any:
    headers = {"Authorization": f"Bearer {secret}"} if secret is not None else {}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return webhook.post("/", data=data, content_type="application/json", headers=headers, **options)


def assert_matches_project_b(db: Databases, client_id: Any) -> dict[str, Any]:
    source, row = db.source(client_id), db.client(client_id)
    assert row is not None
    assert row["status"] == "active"
    assert row["full_name"] == source["name"]
    assert row["email"] == source["email"]
    assert row["source_attributes"] == {
        "age": source["age"],
        "gender_identity": source["gender_identity"],
        "avatar_url": source["avatar_url"],
    }
    assert row["source_updated_at"] == source["updated_at"]
    return row


def test_insert_creates_the_client_with_the_same_id_and_no_therapist(webhook: FlaskClient, db: Databases) -> None:
    client_id = new_project_b_client(db, age=29, gender_identity="non-binary")

    response = deliver(webhook, payload("INSERT", client_id))

    assert response.status_code == 200
    assert response.json == {"outcome": "inserted", "client_id": str(client_id)}
    row = assert_matches_project_b(db, client_id)
    assert row["therapist_id"] is None
    assert row["synced_from"] == "project_b"
    assert row["notes"] == "Synced from Project B. Age: 29, Gender: non-binary"


def test_the_payload_is_not_trusted_project_b_is_re_read(webhook: FlaskClient, db: Databases) -> None:
    client_id = new_project_b_client(db, name="Real Name")
    response = deliver(webhook, payload("INSERT", client_id, name="Forged Name", email="forged@example.test"))
    assert response.status_code == 200
    assert db.client(client_id)["full_name"] == "Real Name"


def test_update_changes_synced_fields_and_keeps_project_a_fields(webhook: FlaskClient, db: Databases) -> None:
    client_id = new_project_b_client(db, age=30)
    assert deliver(webhook, payload("INSERT", client_id)).json["outcome"] == "inserted"
    db.a.execute(
        "update public.clients set notes = 'Prefers mornings', phone = '+44 20 7946 0000',"
        " date_of_birth = '1990-01-02', therapist_id = %s where id = %s",
        (THERAPIST, client_id),
    )
    db.b.execute("update public.profiles set name = 'Renamed Client', age = 31 where id = %s", (client_id,))

    response = deliver(webhook, payload("UPDATE", client_id))

    assert response.json == {"outcome": "updated", "client_id": str(client_id)}
    row = assert_matches_project_b(db, client_id)
    assert row["full_name"] == "Renamed Client"
    assert row["source_attributes"]["age"] == 31
    assert row["notes"] == "Prefers mornings"
    assert row["phone"] == "+44 20 7946 0000"
    assert str(row["date_of_birth"]) == "1990-01-02"
    assert row["therapist_id"] == THERAPIST


def test_the_same_event_twice_is_unchanged_the_second_time(webhook: FlaskClient, db: Databases) -> None:
    client_id = new_project_b_client(db)
    first = deliver(webhook, payload("INSERT", client_id))
    before = db.client(client_id)
    second = deliver(webhook, payload("INSERT", client_id))
    assert (first.json["outcome"], second.json["outcome"]) == ("inserted", "unchanged")
    assert db.client(client_id) == before


def test_email_change_in_auth_users_reaches_project_a(webhook: FlaskClient, db: Databases) -> None:
    client_id = new_project_b_client(db)
    deliver(webhook, payload("INSERT", client_id))
    new_email = random_email("moved")
    db.b.execute("update auth.users set email = %s where id = %s", (new_email, client_id))

    response = deliver(webhook, payload("UPDATE", client_id, table="users", schema="auth", email=new_email))

    assert response.json["outcome"] == "updated"
    assert db.client(client_id)["email"] == new_email


def test_delete_archives_and_keeps_sessions_then_a_returning_profile_reactivates(
    webhook: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    booking = function_client("create_session")
    client_id = new_project_b_client(db, name="Leaving Client", email=random_email("leaving"))
    assert book(booking, token(THERAPIST), client_id).status_code == 201
    db.b.execute("delete from public.profiles where id = %s", (client_id,))

    response = deliver(webhook, payload("DELETE", client_id))

    assert response.json == {"outcome": "archived", "client_id": str(client_id)}
    assert db.client(client_id)["status"] == "archived"
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1
    refused = book(booking, token(THERAPIST), client_id)
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "client_archived"
    assert deliver(webhook, payload("DELETE", client_id)).json["outcome"] == "unchanged"

    db.b.execute("insert into public.profiles (id, name) values (%s, 'Returning Client')", (client_id,))
    assert deliver(webhook, payload("INSERT", client_id)).json["outcome"] == "updated"
    row = assert_matches_project_b(db, client_id)
    assert row["therapist_id"] == THERAPIST
    assert book(booking, token(THERAPIST), client_id).status_code == 201


def test_delete_of_a_client_project_a_never_had_is_unchanged(webhook: FlaskClient, db: Databases) -> None:
    before = db.counts()
    response = deliver(webhook, payload("DELETE", uuid.uuid4()))
    assert response.json["outcome"] == "unchanged"
    assert db.counts() == before


def test_email_conflict_writes_nothing_and_logs_both_ids(
    webhook: FlaskClient, db: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    email = random_email("taken")
    holder = uuid.uuid4()
    db.add_project_a_client(holder, THERAPIST, random_name("Holder"), email, synced=True)
    client_id = new_project_b_client(db, email=email)
    before = db.counts()
    capsys.readouterr()

    response = deliver(webhook, payload("INSERT", client_id))

    assert response.status_code == 200
    assert response.json == {"outcome": "conflict", "client_id": str(client_id)}
    assert db.counts() == before
    conflicts = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"event": "sync_conflict"' in line
    ]
    assert len(conflicts) == 1
    assert conflicts[0]["client_id"] == str(client_id)
    assert conflicts[0]["other_client_id"] == str(holder)
    assert conflicts[0]["conflict"] == "email"
    assert email not in json.dumps(conflicts)


def test_webhook_synced_client_is_claimed_by_the_first_therapist_who_books(
    webhook: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    deliver(webhook, payload("INSERT", client_id))
    booking = function_client("create_session")

    first = book(booking, token(THERAPIST), client_id)
    other = book(booking, token(uuid.UUID("22222222-2222-4222-8222-222222222222")), client_id)

    assert first.status_code == 201
    assert first.json["client_synced"] is False
    assert other.status_code == 404
    assert db.client(client_id)["therapist_id"] == THERAPIST


def test_webhook_and_booking_of_one_client_at_once_make_one_row_and_no_error(
    projects: Any, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    bearer = token(THERAPIST)
    callers = [function_client("project_b_webhook" if index % 2 else "create_session") for index in range(16)]

    def call(index: int) -> Any:
        if index % 2:
            return deliver(callers[index], payload("INSERT", client_id))
        return book(callers[index], bearer, client_id)

    responses = run_concurrently(16, call)

    assert sorted(response.status_code for response in responses) == [200] * 8 + [201] * 8
    assert db.count("a", "public.clients", "id = %s", (client_id,)) == 1
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 8
    assert db.client(client_id)["therapist_id"] == THERAPIST
    assert_matches_project_b(db, client_id)


@pytest.mark.parametrize(
    "secret",
    [None, "", "wrong-secret", WEBHOOK_SECRET[:-1], WEBHOOK_SECRET + "x"],
    ids=["missing", "empty", "wrong", "prefix", "longer"],
)
def test_wrong_or_missing_secret_is_401_and_writes_nothing(
    webhook: FlaskClient, db: Databases, secret: str | None
) -> None:
    client_id = new_project_b_client(db)
    before = db.counts()
    response = deliver(webhook, payload("INSERT", client_id), secret=secret)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert db.counts() == before


def test_secret_in_another_scheme_is_401(webhook: FlaskClient, db: Databases) -> None:
    client_id = new_project_b_client(db)
    response = webhook.post(
        "/", json=payload("INSERT", client_id), headers={"Authorization": f"Basic {WEBHOOK_SECRET}"}
    )
    assert response.status_code == 401
    assert db.client(client_id) is None


BAD_PAYLOADS: list[tuple[str, Any]] = [
    ("not json", b"{"),
    ("not an object", b"[]"),
    ("unknown type", {**payload("INSERT", uuid.uuid4()), "type": "TRUNCATE"}),
    ("insert without record", {**payload("INSERT", uuid.uuid4()), "record": None}),
    ("delete without old_record", {**payload("DELETE", uuid.uuid4()), "old_record": None}),
    ("record without id", {**payload("INSERT", uuid.uuid4()), "record": {"name": "x"}}),
    ("id not a uuid", payload("INSERT", "42")),
    ("missing table", {key: value for key, value in payload("INSERT", uuid.uuid4()).items() if key != "table"}),
]


@pytest.mark.parametrize(("case", "body"), BAD_PAYLOADS, ids=[case for case, _ in BAD_PAYLOADS])
def test_malformed_payload_is_400_and_writes_nothing(webhook: FlaskClient, db: Databases, case: str, body: Any) -> None:
    before = db.counts()
    response = deliver(webhook, body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_request"
    assert db.counts() == before


@pytest.mark.parametrize(("schema", "table"), [("public", "sessions"), ("auth", "identities"), ("private", "profiles")])
def test_other_tables_are_400_with_a_clear_message(
    webhook: FlaskClient, db: Databases, schema: str, table: str
) -> None:
    client_id = new_project_b_client(db)
    before = db.counts()
    response = deliver(webhook, payload("INSERT", client_id, table=table, schema=schema))
    assert response.status_code == 400
    assert f"{schema}.{table}" in response.json["error"]["message"]
    assert "public.profiles" in response.json["error"]["message"]
    assert db.counts() == before


def test_wrong_method_and_content_type(webhook: FlaskClient) -> None:
    assert webhook.get("/", headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"}).status_code == 405
    response = webhook.post(
        "/", data="x", content_type="text/plain", headers={"Authorization": f"Bearer {WEBHOOK_SECRET}"}
    )
    assert response.status_code == 415


def test_a_sign_up_with_a_native_clients_email_is_synced_and_suggested_to_its_therapist(
    webhook: FlaskClient, db: Databases
) -> None:
    email = random_email("signed-up")
    native = uuid.uuid4()
    db.add_project_a_client(native, THERAPIST, random_name("Native"), email)
    client_id = new_project_b_client(db, email=email.upper())

    response = deliver(webhook, payload("INSERT", client_id))

    assert response.json == {"outcome": "inserted", "client_id": str(client_id)}
    suggested = db.a.execute(
        "select client_id, closed_at from private.link_suggestions where project_b_user_id = %s", (client_id,)
    ).fetchall()
    assert suggested == [(native, None)]
    assert db.client(native)["email"] == email
