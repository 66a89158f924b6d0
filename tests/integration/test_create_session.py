"""create_session through functions-framework against real Postgres: the design document's cases and more."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import OTHER_THERAPIST, THERAPIST, Databases
from tests.integration.helpers import function_client
from tests.random_refs import random_email, random_name

pytestmark = pytest.mark.usefixtures("backend")

STARTS_AT = "2026-12-01T10:00:00+01:00"
# One answer for a client in neither project and for another therapist's: nobody learns which.
NOT_FOUND = {"error": {"code": "client_not_found", "message": "No client of yours has this id"}}


@pytest.fixture
def client(projects: Any) -> FlaskClient:
    return function_client("create_session")


def book(
    client: FlaskClient, bearer: str, client_id: Any, *, headers: dict[str, str] | None = None, **fields: Any
) -> Any:
    body = {"client_id": str(client_id), "starts_at": STARTS_AT, **fields}
    return client.post("/", json=body, headers={"Authorization": f"Bearer {bearer}", **(headers or {})})


def new_project_b_client(db: Databases, **profile: Any) -> uuid.UUID:
    client_id = uuid.uuid4()
    db.add_project_b_client(
        client_id,
        profile.pop("name", random_name()),
        profile.pop("email", random_email()),
        **profile,
    )
    return client_id


def test_new_project_b_client_is_copied_with_the_same_id_then_booked(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(
        db, name="Maria Lopez", email=random_email("maria"), age=35, gender_identity="female"
    )

    response = book(client, token(THERAPIST), client_id, duration_minutes=45, notes="Intake")

    assert response.status_code == 201, response.json
    assert response.json["client_synced"] is True
    session = response.json["session"]
    assert session["client_id"] == str(client_id)
    assert session["therapist_id"] == str(THERAPIST)
    assert session["duration_minutes"] == 45
    assert session["status"] == "scheduled"
    assert session["notes"] == "Intake"
    assert session["starts_at"].startswith("2026-12-01T09:00:00")
    row = db.client(client_id)
    assert row["full_name"] == "Maria Lopez"
    assert row["email"].startswith("maria-")
    assert row["notes"] == "Synced from Project B. Age: 35, Gender: female"
    assert row["therapist_id"] == THERAPIST
    assert row["status"] == "active"
    assert row["synced_from"] == "project_b"
    assert row["source_attributes"] == {"age": 35, "gender_identity": "female", "avatar_url": None}
    assert row["phone"] is None and row["date_of_birth"] is None
    assert row["last_synced_at"] is not None and row["source_updated_at"] is not None
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1


def test_client_already_in_project_a_is_booked_without_a_copy(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, THERAPIST, random_name("Local"))

    response = book(client, token(THERAPIST), client_id)

    assert response.status_code == 201, response.json
    assert response.json["client_synced"] is False
    assert response.json["session"]["duration_minutes"] == 50
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1


def test_second_booking_of_a_synced_client_does_not_copy_again(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    first = book(client, token(THERAPIST), client_id)
    second = book(client, token(THERAPIST), client_id)

    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json["client_synced"], second.json["client_synced"]) == (True, False)
    assert db.count("a", "public.clients", "id = %s", (client_id,)) == 1
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 2


def test_profile_without_age_or_gender_gets_a_short_note(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db, name="  ")
    assert book(client, token(THERAPIST), client_id).status_code == 201
    row = db.client(client_id)
    assert row["notes"] == "Synced from Project B."
    assert row["full_name"] == "Unnamed client"


def test_client_in_neither_project_is_404_and_writes_nothing(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    before = db.counts()
    response = book(client, token(THERAPIST), uuid.uuid4())
    assert response.status_code == 404
    assert response.json == NOT_FOUND
    assert db.counts() == before


def test_email_held_by_another_project_a_client_is_409_and_writes_nothing(
    client: FlaskClient, db: Databases, token: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    email = random_email("shared")
    holder = uuid.uuid4()
    db.add_project_a_client(holder, OTHER_THERAPIST, random_name("Holder"), email.upper(), synced=True)
    client_id = new_project_b_client(db, email=email)
    before = db.counts()

    response = book(client, token(THERAPIST), client_id)

    assert response.status_code == 409
    assert response.json["error"]["code"] == "email_conflict"
    assert "already used by another client" in response.json["error"]["message"]
    assert str(holder) not in response.text
    assert email not in response.text.lower()
    assert db.counts() == before
    assert db.client(client_id) is None
    conflict = next(json.loads(line) for line in capsys.readouterr().out.splitlines() if '"sync_conflict"' in line)
    assert (conflict["client_id"], conflict["other_client_id"], conflict["conflict"]) == (
        str(client_id),
        str(holder),
        "email",
    )


def test_another_therapists_client_is_404_as_if_absent_and_writes_nothing(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, OTHER_THERAPIST, random_name("Theirs"))
    before = db.counts()

    response = book(client, token(THERAPIST), client_id)

    assert response.status_code == 404
    assert response.json == NOT_FOUND
    assert db.counts() == before


def test_archived_client_is_409_client_archived(client: FlaskClient, db: Databases, token: Callable[..., str]) -> None:
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, THERAPIST, random_name("Gone"))
    db.a.execute("update public.clients set status = 'archived' where id = %s", (client_id,))

    response = book(client, token(THERAPIST), client_id)

    assert response.status_code == 409
    assert response.json["error"]["code"] == "client_archived"
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 0


def test_unclaimed_client_is_claimed_by_the_first_therapist_who_books(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, None, random_name("Unclaimed"))

    first = book(client, token(THERAPIST), client_id)
    second = book(client, token(OTHER_THERAPIST), client_id)

    assert first.status_code == 201
    assert (second.status_code, second.json) == (404, NOT_FOUND)
    assert db.client(client_id)["therapist_id"] == THERAPIST


def test_same_idempotency_key_returns_the_same_session(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    headers = {"Idempotency-Key": f"key-{uuid.uuid4()}"}

    first = book(client, token(THERAPIST), client_id, headers=headers)
    again = book(client, token(THERAPIST), client_id, headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json["session"] == first.json["session"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1


def test_idempotency_keys_are_per_therapist(client: FlaskClient, db: Databases, token: Callable[..., str]) -> None:
    key = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    db.add_project_a_client(mine, THERAPIST, random_name())
    db.add_project_a_client(theirs, OTHER_THERAPIST, random_name())

    assert book(client, token(THERAPIST), mine, headers=key).status_code == 201
    assert book(client, token(OTHER_THERAPIST), theirs, headers=key).status_code == 201
    assert db.count("a", "public.sessions", "idempotency_key = %s", (key["Idempotency-Key"],)) == 2


def test_idempotency_key_reused_with_other_details_is_422(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, THERAPIST, random_name())
    headers = {"Idempotency-Key": f"key-{uuid.uuid4()}"}

    assert book(client, token(THERAPIST), client_id, headers=headers).status_code == 201
    response = book(client, token(THERAPIST), client_id, headers=headers, duration_minutes=90)

    assert response.status_code == 422
    assert response.json["error"]["code"] == "idempotency_key_reused"
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1


def run_concurrently(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Start `count` threads at once (a barrier, no sleeps) and return their results in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            results[index] = call(index)
        except Exception as exc:  # surfaced by the assertions below
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_32_concurrent_first_bookings_make_one_client_and_32_sessions(
    projects: Any, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db, email=random_email("race"))
    bearer = token(THERAPIST)
    clients = [function_client("create_session") for _ in range(32)]

    responses = run_concurrently(32, lambda index: book(clients[index], bearer, client_id, notes=f"n{index}"))

    statuses = [getattr(response, "status_code", response) for response in responses]
    assert statuses == [201] * 32
    assert sum(response.json["client_synced"] for response in responses) == 1
    assert db.count("a", "public.clients", "id = %s", (client_id,)) == 1
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 32


def test_two_therapists_racing_for_a_new_client_one_wins_the_other_does_not_see_it(
    projects: Any, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    bearers = [token(THERAPIST), token(OTHER_THERAPIST)]
    clients = [function_client("create_session") for _ in range(2)]

    responses = run_concurrently(2, lambda index: book(clients[index], bearers[index], client_id))

    assert sorted(response.status_code for response in responses) == [201, 404]
    winner = next(response for response in responses if response.status_code == 201)
    assert db.client(client_id)["therapist_id"] == uuid.UUID(winner.json["session"]["therapist_id"])
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1


def test_concurrent_requests_with_one_idempotency_key_make_one_session(
    projects: Any, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    bearer = token(THERAPIST)
    headers = {"Idempotency-Key": f"key-{uuid.uuid4()}"}
    clients = [function_client("create_session") for _ in range(8)]

    responses = run_concurrently(8, lambda index: book(clients[index], bearer, client_id, headers=headers))

    assert [response.status_code for response in responses] == [201] * 8
    assert len({response.json["session"]["id"] for response in responses}) == 1
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1


def test_concurrent_bookings_by_two_therapists_each_book_with_their_own_token(
    projects: Any, db: Databases, token: Callable[..., str]
) -> None:
    """Each booking reaches Project A as its own therapist (on the client backend: PostgREST gets each request's
    own token), however the threads interleave: every one books its therapist's own client."""
    from tests.integration.test_access_control import synced_client

    count = 16
    therapists = [THERAPIST if index % 2 == 0 else OTHER_THERAPIST for index in range(count)]
    client_ids = [synced_client(db, therapist) for therapist in therapists]
    bearers = [token(therapist) for therapist in therapists]
    clients = [function_client("create_session") for _ in range(count)]

    responses = run_concurrently(count, lambda index: book(clients[index], bearers[index], client_ids[index]))

    assert [getattr(response, "status_code", response) for response in responses] == [201] * count
    booked = [uuid.UUID(response.json["session"]["therapist_id"]) for response in responses]
    assert booked == therapists
    for client_id, therapist in zip(client_ids, therapists, strict=True):
        assert db.count("a", "public.sessions", "client_id = %s and therapist_id = %s", (client_id, therapist)) == 1
