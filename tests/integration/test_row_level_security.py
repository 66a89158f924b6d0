"""The migrations' roles and row level security, as PostgREST would meet them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from tests.conftest import Databases
from tests.integration.test_create_session import OTHER_THERAPIST, THERAPIST
from tests.random_refs import random_email, random_name


def as_therapist(conn: psycopg.Connection, therapist_id: uuid.UUID) -> None:
    conn.execute(
        "select set_config('role', 'authenticated', true), set_config('request.jwt.claims', %s, true)",
        (json.dumps({"sub": str(therapist_id), "role": "authenticated"}),),
    )


@pytest.fixture
def two_clients(db: Databases) -> tuple[uuid.UUID, uuid.UUID]:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    db.add_project_a_client(mine, THERAPIST, random_name("Mine"))
    db.add_project_a_client(theirs, OTHER_THERAPIST, random_name("Theirs"))
    return mine, theirs


def test_a_therapist_sees_only_their_own_clients(projects: Any, two_clients: tuple[uuid.UUID, uuid.UUID]) -> None:
    mine, theirs = two_clients
    with psycopg.connect(projects.project_a_url) as conn:
        as_therapist(conn, THERAPIST)
        visible = {
            row[0] for row in conn.execute("select id from public.clients where id = any(%s)", ([mine, theirs],))
        }
    assert visible == {mine}


@pytest.mark.parametrize(
    ("client", "in_the_name_of"),
    [("theirs", THERAPIST), ("mine", OTHER_THERAPIST)],
    ids=["another therapist's client", "another therapist's name"],
)
def test_a_therapist_cannot_insert_a_session_but_for_their_own_client_in_their_own_name(
    projects: Any, two_clients: tuple[uuid.UUID, uuid.UUID], client: str, in_the_name_of: uuid.UUID
) -> None:
    client_id = dict(zip(("mine", "theirs"), two_clients, strict=True))[client]
    with psycopg.connect(projects.project_a_url) as conn:
        as_therapist(conn, THERAPIST)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "insert into public.sessions (client_id, therapist_id, starts_at) values (%s, %s, now())",
                (client_id, in_the_name_of),
            )


def test_anon_reads_nothing_and_cannot_book(projects: Any, two_clients: tuple[uuid.UUID, uuid.UUID]) -> None:
    with psycopg.connect(projects.project_a_url) as conn:
        conn.execute("set local role anon")
        for statement in ("select count(*) from public.clients", "select count(*) from public.sessions"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(statement)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select public.create_session(%s, now())", (two_clients[0],))


@pytest.mark.parametrize(
    "call",
    ["select * from public.client_states(array[%s]::uuid[])", "select * from public.client_page(null, 10, %s)"],
    ids=["client_states", "client_page"],
)
def test_only_the_service_role_reads_clients_in_project_b(projects: Any, db: Databases, call: str) -> None:
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name(), random_email())
    for role in ("anon", "authenticated"):
        with psycopg.connect(projects.project_b_url) as conn:
            as_therapist(conn, client_id)
            conn.execute(f"set local role {role}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(call, (client_id,))
    with psycopg.connect(projects.project_b_url) as conn:
        conn.execute("set local role service_role")
        assert conn.execute(call, (client_id,)).fetchall()  # client_page: at least the client itself


def test_migrations_apply_once(projects: Any) -> None:
    from ops.migrate import apply_migrations

    assert apply_migrations(projects.project_a_url, "project_a", local=True) == []
    assert apply_migrations(projects.project_b_url, "project_b", local=True) == []
