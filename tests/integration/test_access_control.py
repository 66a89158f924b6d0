"""Attacks on Project A's patient data, as an attacker would make them: through create_session and the webhook,
and straight in SQL as `authenticated` with the attacker's claims (what PostgREST would run). Each asserts the
answer and that no row changed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from tests.conftest import OTHER_THERAPIST, THERAPIST, Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session import NOT_FOUND, book, new_project_b_client
from tests.integration.test_create_session_faults import UNREACHABLE
from tests.integration.test_project_b_webhook import deliver, payload
from tests.random_refs import random_email, random_name

NOT_A_THERAPIST = {"error": {"code": "not_a_therapist", "message": "Only therapists book sessions"}}


@pytest.fixture
def client(projects: Any) -> FlaskClient:
    return function_client("create_session")


@pytest.fixture
def user(db: Databases) -> uuid.UUID:
    """A signed-up user of Project A who is not a therapist."""
    user_id = uuid.uuid4()
    db.a.execute("insert into auth.users (id, email) values (%s, %s)", (user_id, random_email("user")))
    return user_id


@contextmanager
def as_user(projects: Any, user_id: uuid.UUID) -> Iterator[psycopg.Connection]:
    """A transaction as PostgREST runs a request: role authenticated and the user's claims. Rolled back."""
    with psycopg.connect(projects.project_a_url) as conn:
        conn.execute(
            "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
            (json.dumps({"sub": str(user_id), "role": "authenticated", "aud": "authenticated"}),),
        )
        yield conn
        conn.rollback()


def refused(conn: psycopg.Connection, statement: str, params: Any = ()) -> None:
    """`statement` fails for lack of privilege (or a policy or guard saying so), and is undone."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
        conn.execute(statement, params)


def synced_client(db: Databases, therapist_id: uuid.UUID | None, **profile: Any) -> uuid.UUID:
    """A client in both projects, synced as the webhook does it, of `therapist_id`."""
    client_id = new_project_b_client(db, **profile)
    deliver(function_client("project_b_webhook"), payload("INSERT", client_id))
    db.a.execute("update public.clients set therapist_id = %s where id = %s", (therapist_id, client_id))
    return client_id


# Only therapists book.


def test_a_user_who_is_not_a_therapist_gets_403_with_no_lookup_and_no_write(
    client: FlaskClient,
    db: Databases,
    token: Callable[..., str],
    user: uuid.UUID,
    reconfigure: Callable[..., None],
) -> None:
    only_in_b = new_project_b_client(db)
    unclaimed = synced_client(db, None)
    before = db.counts()
    reconfigure(PROJECT_B_DB_URL=UNREACHABLE)  # a lookup of the client in Project B would be a 503

    for client_id in (only_in_b, unclaimed, uuid.uuid4()):
        response = book(function_client("create_session"), token(user), client_id)
        assert (response.status_code, response.json) == (403, NOT_A_THERAPIST)

    assert db.counts() == before
    assert db.client(only_in_b) is None
    assert db.client(unclaimed)["therapist_id"] is None


def test_a_therapist_removed_from_therapists_loses_their_clients(
    projects: Any, db: Databases, token: Callable[..., str]
) -> None:
    former = uuid.uuid4()
    db.a.execute("insert into auth.users (id) values (%s)", (former,))
    db.a.execute("insert into public.therapists (id) values (%s)", (former,))
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, former, random_name("Theirs"))
    assert book(function_client("create_session"), token(former), client_id).status_code == 201

    db.a.execute("delete from public.therapists where id = %s", (former,))

    response = book(function_client("create_session"), token(former), client_id)
    assert (response.status_code, response.json) == (403, NOT_A_THERAPIST)
    with as_user(projects, former) as conn:
        assert conn.execute("select count(*) from public.clients").fetchone()[0] == 0
        assert conn.execute("select count(*) from public.sessions").fetchone()[0] == 0


def test_in_sql_a_non_therapist_books_nothing_claims_nothing_and_reads_nothing(
    projects: Any, db: Databases, user: uuid.UUID
) -> None:
    unclaimed = synced_client(db, None)
    db.a.execute("update public.clients set therapist_id = %s where id = %s", (None, unclaimed))
    own_row = uuid.uuid4()
    db.add_project_a_client(own_row, user, random_name("Planted"))
    before = db.counts()

    with as_user(projects, user) as conn:
        answer = conn.execute("select public.create_session(%s, now())", (unclaimed,)).fetchone()[0]
        assert answer == {"outcome": "not_a_therapist"}
        assert conn.execute("select private.client_access(%s)", (unclaimed,)).fetchone()[0] == "not_a_therapist"
        assert conn.execute("select count(*) from public.clients").fetchone()[0] == 0
        assert conn.execute("select count(*) from public.therapists").fetchone()[0] == 0
        refused(conn, "insert into public.clients (full_name, therapist_id) values ('Mine', %s)", (user,))
        refused(conn, "insert into public.therapists (id) values (%s)", (user,))
        conn.commit()

    assert db.counts() == before
    assert db.client(unclaimed)["therapist_id"] is None


def test_in_sql_only_the_service_role_runs_the_sync_functions(projects: Any, db: Databases) -> None:
    victim = uuid.uuid4()
    db.add_project_a_client(victim, OTHER_THERAPIST, random_name("Theirs"))
    claims = json.dumps({"sub": str(OTHER_THERAPIST), "role": "authenticated"})
    row = json.dumps([{"id": str(victim), "full_name": "Overwritten", "source_attributes": {}}])
    before = db.counts()
    with as_user(projects, THERAPIST) as conn:
        refused(conn, "select public.book_session_as(%s, %s, now(), 50, null, null)", (claims, victim))
        refused(conn, "select * from public.upsert_synced_clients(%s)", (row,))
        refused(conn, "select * from public.archive_synced_clients(%s)", (json.dumps([{"id": str(victim)}]),))
    assert db.counts() == before
    assert db.client(victim)["full_name"] != "Overwritten"


def test_in_sql_a_therapist_cannot_run_the_link_invite_or_status_functions(projects: Any, db: Databases) -> None:
    """The link and invite functions take verified claims; only the functions' login and the service role may call
    them."""
    claims = json.dumps({"sub": str(OTHER_THERAPIST), "role": "authenticated"})
    native, user = uuid.uuid4(), uuid.uuid4()
    with as_user(projects, THERAPIST) as conn:
        refused(conn, "select public.link_suggestions_for(%s)", (claims,))
        refused(conn, "select public.reject_link_as(%s, %s, %s)", (claims, native, user))
        refused(conn, "select public.link_client_as(%s, %s, %s, true, '{}')", (claims, native, user))
        refused(conn, "select public.link_suggestions_for(null)", ())
        refused(conn, "select public.client_to_invite_as(%s, %s)", (claims, native))
        refused(conn, "select public.record_invite_as(%s, %s, '{}')", (claims, native))
        refused(conn, "select public.sync_status()", ())
        refused(conn, "select public.apply_sync_page('[]', '[]', null, null, null, '{\"kind\": \"backfill\"}')", ())


# No existence oracle.


def test_another_therapists_client_archived_or_not_and_an_unknown_id_answer_alike(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    theirs = synced_client(db, OTHER_THERAPIST)
    theirs_archived = synced_client(db, OTHER_THERAPIST)
    db.a.execute("update public.clients set status = 'archived' where id = %s", (theirs_archived,))
    native_theirs = uuid.uuid4()
    db.add_project_a_client(native_theirs, OTHER_THERAPIST, random_name("Native"))
    before = db.counts()

    answers = [book(client, token(THERAPIST), client_id) for client_id in (theirs, theirs_archived, native_theirs)]
    answers.append(book(client, token(THERAPIST), uuid.uuid4()))

    assert [(answer.status_code, answer.json) for answer in answers] == [(404, NOT_FOUND)] * 4
    assert len({answer.get_data() for answer in answers}) == 1
    assert db.counts() == before
    assert db.client(theirs)["therapist_id"] == OTHER_THERAPIST


def test_client_archived_is_only_for_the_own_therapist_not_for_an_unclaimed_client(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    mine, unclaimed = synced_client(db, THERAPIST), synced_client(db, None)
    db.a.execute("update public.clients set status = 'archived' where id = any(%s)", ([mine, unclaimed],))

    response = book(client, token(THERAPIST), mine)
    assert (response.status_code, response.json["error"]["code"]) == (409, "client_archived")
    response = book(client, token(THERAPIST), unclaimed)
    assert (response.status_code, response.json) == (404, NOT_FOUND)
    assert db.client(unclaimed)["therapist_id"] is None
    assert db.count("a", "public.sessions", "client_id = any(%s)", ([mine, unclaimed],)) == 0


def test_in_sql_another_therapists_client_is_not_found_like_an_unknown_id(projects: Any, db: Databases) -> None:
    theirs = uuid.uuid4()
    db.add_project_a_client(theirs, OTHER_THERAPIST, random_name("Theirs"))
    with as_user(projects, THERAPIST) as conn:
        answers = [
            conn.execute("select public.create_session(%s, now())", (client_id,)).fetchone()[0]
            for client_id in (theirs, uuid.uuid4())
        ]
        assert conn.execute("select count(*) from public.clients where id = %s", (theirs,)).fetchone()[0] == 0
    assert answers == [{"outcome": "not_found"}] * 2


# Rows users cannot forge.


@pytest.mark.parametrize(
    "column",
    ["id", "synced_from", "source_attributes", "source_updated_at", "last_synced_at", "status", "created_at"],
)
def test_in_sql_a_therapist_cannot_set_the_sync_columns(projects: Any, db: Databases, column: str) -> None:
    value = {
        "id": str(uuid.uuid4()),
        "synced_from": "project_b",
        "source_attributes": "{}",
        "source_updated_at": "2999-01-01T00:00:00Z",
        "last_synced_at": "2999-01-01T00:00:00Z",
        "status": "active",
        "created_at": "2000-01-01T00:00:00Z",
    }[column]
    own = synced_client(db, THERAPIST)
    stored = db.client(own)
    before = db.counts()
    with as_user(projects, THERAPIST) as conn:
        refused(
            conn,
            f"insert into public.clients (full_name, therapist_id, {column}) values ('Placeholder', %s, %s)",
            (THERAPIST, value),
        )
        refused(conn, f"update public.clients set {column} = %s where id = %s", (value, own))
        conn.commit()
    assert db.counts() == before
    assert db.client(own) == stored


def test_in_sql_a_therapist_edits_their_native_clients_but_not_the_synced_fields_of_synced_ones(
    projects: Any, db: Databases
) -> None:
    synced = synced_client(db, THERAPIST)
    with as_user(projects, THERAPIST) as conn:
        native = conn.execute(
            "insert into public.clients (full_name, email, phone, date_of_birth, notes, therapist_id)"
            " values ('Native', %s, '+1 555', '1990-01-01', 'n', %s) returning id",
            (random_email("native"), THERAPIST),
        ).fetchone()[0]
        conn.execute(
            "update public.clients set full_name = 'Renamed', email = %s, phone = '+1 556', notes = 'm' where id = %s",
            (random_email("renamed"), native),
        )
        conn.execute("update public.clients set phone = '+1 557', notes = 'ours' where id = %s", (synced,))
        refused(conn, "update public.clients set full_name = 'Not From B' where id = %s", (synced,))
        refused(conn, "update public.clients set email = %s where id = %s", (random_email("forged"), synced))
        conn.commit()
    assert db.client(native)["full_name"] == "Renamed"
    row = db.client(synced)
    assert (row["phone"], row["notes"], row["full_name"]) == ("+1 557", "ours", db.source(synced)["name"])


def test_the_sync_leaves_a_native_row_with_a_project_b_id_untouched(
    projects: Any, db: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row Project A created itself is never filled in from Project B, even when a profile has its id."""
    client_id = new_project_b_client(db, name="Real Name", email=random_email("real"))
    db.add_project_a_client(client_id, THERAPIST, "Placeholder")
    stored = db.client(client_id)
    capsys.readouterr()

    response = deliver(function_client("project_b_webhook"), payload("UPDATE", client_id))

    assert response.json == {"outcome": "conflict", "client_id": str(client_id)}
    assert db.client(client_id) == stored
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"sync_conflict"' in line]
    assert [(entry["client_id"], entry["conflict"]) for entry in logged] == [(str(client_id), "id")]
    db.b.execute("delete from public.profiles where id = %s", (client_id,))
    deleted = deliver(function_client("project_b_webhook"), payload("DELETE", client_id))
    assert deleted.json["outcome"] == "unchanged"
    assert db.client(client_id) == stored


def test_a_therapist_books_their_own_native_client_that_shares_an_id_with_a_profile(
    client: FlaskClient, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    db.add_project_a_client(client_id, THERAPIST, "Native")
    assert book(client, token(THERAPIST), client_id).status_code == 201
    response = book(client, token(OTHER_THERAPIST), client_id)
    assert (response.status_code, response.json) == (404, NOT_FOUND)
    assert db.client(client_id)["full_name"] == "Native"


def test_in_sql_a_session_points_only_to_an_own_active_client(projects: Any, db: Databases) -> None:
    mine, mine_too, mine_archived = (synced_client(db, THERAPIST) for _ in range(3))
    theirs = synced_client(db, OTHER_THERAPIST)
    session_id = db.a.execute(
        "insert into public.sessions (client_id, therapist_id, starts_at) values (%s, %s, now()) returning id",
        (mine, THERAPIST),
    ).fetchone()[0]
    db.a.execute("update public.clients set status = 'archived' where id = %s", (mine_archived,))
    move = "update public.sessions set client_id = %s where id = %s"
    with as_user(projects, THERAPIST) as conn:
        refused(conn, move, (theirs, session_id))
        refused(conn, move, (mine_archived, session_id))
        refused(
            conn,
            "insert into public.sessions (client_id, therapist_id, starts_at) values (%s, %s, now())",
            (mine_archived, THERAPIST),
        )
        for column, value in (("therapist_id", OTHER_THERAPIST), ("id", uuid.uuid4()), ("idempotency_key", "forged")):
            refused(conn, f"update public.sessions set {column} = %s where id = %s", (value, session_id))
        refused(
            conn,
            "insert into public.sessions (id, client_id, therapist_id, starts_at) values (%s, %s, %s, now())",
            (uuid.uuid4(), mine, THERAPIST),
        )
        conn.execute(move, (mine_too, session_id))
        conn.commit()
    assert db.a.execute("select client_id from public.sessions where id = %s", (session_id,)).fetchone()[0] == mine_too

    # A session of a client archived since stays editable: it can still be cancelled.
    db.a.execute("update public.clients set status = 'archived' where id = %s", (mine_too,))
    with as_user(projects, THERAPIST) as conn:
        conn.execute("update public.sessions set status = 'cancelled' where id = %s", (session_id,))
        conn.commit()
    assert db.a.execute("select status from public.sessions where id = %s", (session_id,)).fetchone()[0] == "cancelled"


def test_in_sql_moving_a_session_to_another_therapists_client_fails_as_for_an_unknown_id(
    projects: Any, db: Databases
) -> None:
    mine, theirs = synced_client(db, THERAPIST), synced_client(db, OTHER_THERAPIST)
    session_id = db.a.execute(
        "insert into public.sessions (client_id, therapist_id, starts_at) values (%s, %s, now()) returning id",
        (mine, THERAPIST),
    ).fetchone()[0]
    errors = []
    for target in (theirs, uuid.uuid4()):
        with as_user(projects, THERAPIST) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as refusal:
            conn.execute("update public.sessions set client_id = %s where id = %s", (target, session_id))
        errors.append(refusal.value.diag.message_primary)
    assert errors[0] == errors[1]


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(
    ("project", "table"),
    [("a", "public.clients"), ("a", "public.sessions"), ("a", "public.therapists"), ("b", "public.profiles")],
)
def test_api_roles_can_neither_truncate_nor_attach_a_trigger(
    projects: Any, db: Databases, role: str, project: str, table: str
) -> None:
    url = projects.project_a_url if project == "a" else projects.project_b_url
    rows = db.count(project, table)
    with psycopg.connect(url) as conn:
        conn.execute("create function pg_temp.spy() returns trigger language plpgsql as $$begin return null; end$$")
        conn.execute("select set_config('role', %s, true)", (role,))
        refused(conn, f"truncate {table}")
        refused(conn, f"create trigger spy after insert on {table} for each statement execute function pg_temp.spy()")
        conn.rollback()
    assert db.count(project, table) == rows
