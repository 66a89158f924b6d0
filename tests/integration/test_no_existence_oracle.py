"""No answer of create_session (nor of sync_client) tells a therapist whether an id is a client: every id that is
not theirs gets the same 404, byte for byte, through the same round trips (one statement to each project); only
their own archived client is a 409. Time is measured by bench/not_found.py, not here; what makes it equal is
counted here."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from types import ModuleType
from typing import Any

import psycopg
import pytest

from bench.rtt_proxy import RttProxy
from shared.stores.pools import pools_idle
from tests.conftest import OTHER_THERAPIST, THERAPIST, Databases
from tests.integration.helpers import function_client, function_module, lambda_event
from tests.integration.test_access_control import as_user, refused, synced_client
from tests.integration.test_create_session import NOT_FOUND, STARTS_AT, book, new_project_b_client
from tests.integration.test_project_b_webhook import deliver, payload
from tests.random_refs import random_name

CLIENT_ARCHIVED = "client_archived"

# Every case a therapist can name that is not their own client: each must be the same 404.
NOT_THEIRS = (
    "unknown id",
    "another therapist's client, in Project B",
    "another therapist's client, deleted in Project B",
    "a client nobody claimed, deleted in Project B",
    "another therapist's client created in Project A",
    "a Project B client deleted before it was ever synced",
)


def deleted_in_project_b(db: Databases, client_id: uuid.UUID) -> uuid.UUID:
    """The profile deleted in Project B (the deletion recorded) and its webhook event applied: archived."""
    db.b.execute("delete from public.profiles where id = %s", (client_id,))
    deliver(function_client("project_b_webhook"), payload("DELETE", client_id))
    return client_id


def make_case(db: Databases, case: str) -> uuid.UUID:
    """An id of `case`, in both projects as the sync leaves it, for THERAPIST to book."""
    if case == "unknown id":
        return uuid.uuid4()
    if case == "another therapist's client, in Project B":
        return synced_client(db, OTHER_THERAPIST)
    if case == "another therapist's client, deleted in Project B":
        return deleted_in_project_b(db, synced_client(db, OTHER_THERAPIST))
    if case == "a client nobody claimed, deleted in Project B":
        return deleted_in_project_b(db, synced_client(db, None))
    if case == "another therapist's client created in Project A":
        client_id = uuid.uuid4()
        db.add_project_a_client(client_id, OTHER_THERAPIST, random_name("Native"))
        return client_id
    if case == "a Project B client deleted before it was ever synced":
        client_id = new_project_b_client(db)
        db.b.execute("delete from public.profiles where id = %s", (client_id,))
        return client_id
    raise ValueError(case)


@pytest.fixture
def not_theirs(projects: Any, db: Databases) -> dict[str, uuid.UUID]:
    ids = {case: make_case(db, case) for case in NOT_THEIRS}
    assert db.client(ids["a client nobody claimed, deleted in Project B"])["status"] == "archived"
    assert db.client(ids["another therapist's client, deleted in Project B"])["status"] == "archived"
    return ids


@pytest.fixture
def mine_archived(projects: Any, db: Databases) -> uuid.UUID:
    return deleted_in_project_b(db, synced_client(db, THERAPIST))


def test_every_id_not_yours_is_the_same_404_and_only_your_archived_client_is_409(
    db: Databases, token: Callable[..., str], not_theirs: dict[str, uuid.UUID], mine_archived: uuid.UUID
) -> None:
    client = function_client("create_session")
    unclaimed = not_theirs["a client nobody claimed, deleted in Project B"]
    before = db.counts()

    answers = {case: book(client, token(THERAPIST), client_id) for case, client_id in not_theirs.items()}
    mine = book(client, token(THERAPIST), mine_archived)

    assert {case: (answer.status_code, answer.json) for case, answer in answers.items()} == {
        case: (404, NOT_FOUND) for case in NOT_THEIRS
    }
    assert len({answer.get_data() for answer in answers.values()}) == 1
    assert (mine.status_code, mine.json["error"]["code"]) == (409, CLIENT_ARCHIVED)
    assert db.counts() == before
    assert db.client(unclaimed)["therapist_id"] is None


def test_through_lambda_too_every_id_not_yours_is_the_same_404(
    db: Databases, token: Callable[..., str], not_theirs: dict[str, uuid.UUID], mine_archived: uuid.UUID
) -> None:
    function: ModuleType = function_module("create_session")

    def booked(client_id: uuid.UUID) -> dict[str, Any]:
        body = {"client_id": str(client_id), "starts_at": STARTS_AT}
        event = lambda_event("create_session", body=body, headers={"authorization": f"Bearer {token(THERAPIST)}"})
        return function.lambda_handler(event, None)  # type: ignore[no-any-return]

    results = [booked(client_id) for client_id in not_theirs.values()]
    mine = booked(mine_archived)

    answers = {(result["statusCode"], result["body"]) for result in results}
    assert len(answers) == 1
    ((status, body),) = answers
    assert (status, json.loads(body)) == (404, NOT_FOUND)
    assert (mine["statusCode"], json.loads(mine["body"])["error"]["code"]) == (409, CLIENT_ARCHIVED)


def wait_until_pools_idle(timeout: float = 10.0) -> None:
    """Until no pool has a connection in use or being opened, so that none is counted after a reset."""
    deadline = time.monotonic() + timeout
    while not pools_idle():
        if time.monotonic() > deadline:
            raise AssertionError(f"a pool was still busy after {timeout} s")
        time.sleep(0.01)


def test_every_404_sends_one_statement_to_each_project_and_a_synced_client_one_to_project_a(
    projects: Any,
    db: Databases,
    token: Callable[..., str],
    reconfigure: Callable[..., None],
    not_theirs: dict[str, uuid.UUID],
) -> None:
    mine = [synced_client(db, THERAPIST) for _ in range(2)]
    with RttProxy(projects.project_a_functions_url) as proxy_a, RttProxy(projects.project_b_functions_url) as proxy_b:
        reconfigure(PROJECT_A_DB_URL=proxy_a.url(), PROJECT_B_DB_URL=proxy_b.url())
        client = function_client("create_session")
        book(client, token(THERAPIST), uuid.uuid4())  # opens both pools' connections
        wait_until_pools_idle()

        def round_trips(client_id: uuid.UUID) -> tuple[int, int, int]:
            proxy_a.reset()
            proxy_b.reset()
            status = book(client, token(THERAPIST), client_id).status_code
            return status, proxy_a.snapshot().total, proxy_b.snapshot().total

        counted = {case: round_trips(client_id) for case, client_id in not_theirs.items()}
        synced = round_trips(mine[1])

    assert counted == {case: (404, 1, 1) for case in NOT_THEIRS}
    assert synced == (201, 1, 0)


def test_in_sql_only_your_archived_client_is_archived_and_nobody_elses_row_is_locked(
    projects: Any, db: Databases, not_theirs: dict[str, uuid.UUID], mine_archived: uuid.UUID
) -> None:
    with as_user(projects, THERAPIST) as conn:
        for case, client_id in not_theirs.items():
            answer = conn.execute("select public.create_session(%s, now())", (client_id,)).fetchone()[0]
            assert answer == {"outcome": "not_found"}, case
        # Not a row locked, so nothing written: a not_found costs the same whoever's the id is.
        assert conn.execute("select pg_current_xact_id_if_assigned()").fetchone()[0] is None
        answer = conn.execute("select public.create_session(%s, now())", (mine_archived,)).fetchone()[0]
        assert answer == {"outcome": "archived"}


def test_in_sql_a_user_cannot_ask_whether_project_a_holds_an_id(projects: Any, db: Databases) -> None:
    theirs = synced_client(db, OTHER_THERAPIST)
    with as_user(projects, THERAPIST) as conn:
        refused(conn, "select private.held_elsewhere(%s, %s)", (theirs, THERAPIST))


# sync_client, the other answer a therapist gets about one id.


def test_sync_client_answers_every_id_not_yours_with_the_same_404(
    db: Databases, token: Callable[..., str], not_theirs: dict[str, uuid.UUID]
) -> None:
    client = function_client("sync_client")
    theirs = not_theirs["another therapist's client, in Project B"]
    before = db.client(theirs)

    answers = [
        client.post("/", json={"client_id": str(client_id)}, headers={"Authorization": f"Bearer {token(THERAPIST)}"})
        for client_id in not_theirs.values()
    ]

    assert [(answer.status_code, answer.json) for answer in answers] == [(404, NOT_FOUND)] * len(NOT_THEIRS)
    assert len({answer.get_data() for answer in answers}) == 1
    assert db.client(theirs) == before


def test_sync_client_answers_your_own_archived_client_unchanged(
    db: Databases, token: Callable[..., str], mine_archived: uuid.UUID
) -> None:
    client = function_client("sync_client")
    before = db.client(mine_archived)

    answer = client.post(
        "/", json={"client_id": str(mine_archived)}, headers={"Authorization": f"Bearer {token(THERAPIST)}"}
    )

    assert (answer.status_code, answer.json) == (200, {"outcome": "unchanged", "client_id": str(mine_archived)})
    assert db.client(mine_archived) == before


def test_in_sql_sync_client_as_neither_writes_nor_locks_another_therapists_client(projects: Any, db: Databases) -> None:
    theirs = synced_client(db, OTHER_THERAPIST)
    profile, updated_at = db.b.execute(
        "select profile, updated_at from public.client_states(array[%s]::uuid[])", (theirs,)
    ).fetchone()
    newer = {"profile": {**profile, "name": "Renamed"}, "updated_at": (updated_at + timedelta(seconds=1)).isoformat()}
    claims = json.dumps({"sub": str(THERAPIST), "role": "authenticated"})
    with psycopg.connect(projects.project_a_url) as conn:
        answer = conn.execute(
            "select public.sync_client_as(%s, %s, %s, null)", (claims, theirs, json.dumps(newer))
        ).fetchone()[0]
        assert answer == {"outcome": "not_found"}
        assert conn.execute("select pg_current_xact_id_if_assigned()").fetchone()[0] is None
        conn.rollback()
    assert db.client(theirs)["full_name"] != "Renamed"


def test_in_sql_sync_client_as_runs_no_archive_for_an_id_with_nothing_to_archive(
    projects: Any, db: Databases, not_theirs: dict[str, uuid.UUID]
) -> None:
    """The archive's work is what made an unknown id's 404 slower than another therapist's."""
    claims = json.dumps({"sub": str(THERAPIST), "role": "authenticated"})
    absence = json.dumps({"absent_since": "2026-12-01T00:00:00Z"})
    for case in ("unknown id", "a client nobody claimed, deleted in Project B"):
        with psycopg.connect(projects.project_a_url) as conn:
            conn.execute("set track_functions = 'all'")
            answer = conn.execute(
                "select public.sync_client_as(%s, %s, null, %s)", (claims, not_theirs[case], absence)
            ).fetchone()[0]
            called = {row[0] for row in conn.execute("select funcname from pg_stat_xact_user_functions")}
            conn.rollback()
        assert answer == {"outcome": "not_found"}, case
        assert "sync_client_as" in called, case
        assert "archive_synced_clients" not in called, case
