"""The functions' login, client_sync: it acts as service_role or authenticated and can do nothing else.

Connected as client_sync (the projects fixture's *_functions_url), as the functions are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from devtools.localdb import FUNCTIONS_ROLE, LocalProjects
from tests.conftest import Databases
from tests.integration.helpers import function_client
from tests.random_refs import random_email, random_name

THERAPIST = uuid.UUID("11111111-1111-4111-8111-111111111111")
PROJECTS = ("a", "b")
ACTING_AS = (None, "service_role", "authenticated")
DDL = {
    "table": "create table public.least_privilege_probe (id integer)",
    "schema": "create schema least_privilege_probe",
    "function": "create function public.least_privilege_probe() returns integer language sql as 'select 1'",
}


@pytest.fixture
def connect_as_client_sync(projects: LocalProjects) -> Iterator[Callable[[str], psycopg.Connection]]:
    """Connections to Project "a" or "b" as client_sync (in a transaction, rolled back at the end)."""
    opened: list[psycopg.Connection] = []

    def connect(project: str) -> psycopg.Connection:
        url = projects.project_a_functions_url if project == "a" else projects.project_b_functions_url
        conn = psycopg.connect(url)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


def test_the_functions_urls_log_in_as_client_sync(connect_as_client_sync: Callable[[str], psycopg.Connection]) -> None:
    for project in PROJECTS:
        conn = connect_as_client_sync(project)
        assert conn.execute("select session_user, current_user").fetchone() == (FUNCTIONS_ROLE, FUNCTIONS_ROLE)


def test_client_sync_has_no_attribute_beyond_login(connect_as_client_sync: Callable[[str], psycopg.Connection]) -> None:
    conn = connect_as_client_sync("a")
    row = conn.execute(
        "select rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication, rolinherit, rolcanlogin"
        " from pg_roles where rolname = session_user"
    ).fetchone()
    assert row == (False, False, False, False, False, False, True)


def test_client_sync_is_a_member_of_service_role_and_authenticated_only(
    connect_as_client_sync: Callable[[str], psycopg.Connection],
) -> None:
    conn = connect_as_client_sync("a")
    member_of = {
        name
        for (name,) in conn.execute(
            "select rolname from pg_roles where rolname <> session_user and pg_has_role(session_user, oid, 'member')"
        )
    }
    assert member_of == {"service_role", "authenticated"}
    # No admin option: it cannot hand either role on.
    admin_of = conn.execute(
        "select count(*) from pg_roles where rolname <> session_user"
        " and pg_has_role(session_user, oid, 'member with admin option')"
    ).fetchone()[0]
    assert admin_of == 0


@pytest.mark.parametrize("project", PROJECTS)
def test_client_sync_owns_nothing(project: str, connect_as_client_sync: Callable[[str], psycopg.Connection]) -> None:
    conn = connect_as_client_sync(project)
    owned = conn.execute(
        """
        select 'relation ' || oid::regclass::text from pg_class where relowner = session_user::regrole
        union all
        select 'schema ' || nspname from pg_namespace where nspowner = session_user::regrole
        union all
        select 'function ' || oid::regprocedure::text from pg_proc where proowner = session_user::regrole
        union all
        select 'database ' || datname from pg_database where datdba = session_user::regrole
        """
    ).fetchall()
    assert owned == []


@pytest.mark.parametrize("project", PROJECTS)
@pytest.mark.parametrize("role", ACTING_AS, ids=lambda role: role or "login")
@pytest.mark.parametrize("kind", DDL)
def test_client_sync_cannot_create_anything(
    project: str, role: str | None, kind: str, connect_as_client_sync: Callable[[str], psycopg.Connection]
) -> None:
    conn = connect_as_client_sync(project)
    if role:
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(DDL[kind])


@pytest.mark.parametrize(
    ("project", "table"), [("a", "public.clients"), ("a", "public.sessions"), ("b", "public.profiles")]
)
def test_the_login_itself_reads_nothing_until_it_sets_a_role(
    project: str, table: str, connect_as_client_sync: Callable[[str], psycopg.Connection]
) -> None:
    conn = connect_as_client_sync(project)
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(f"select count(*) from {table}")


@pytest.mark.parametrize("project", PROJECTS)
def test_client_sync_can_act_as_service_role_and_authenticated(
    project: str, connect_as_client_sync: Callable[[str], psycopg.Connection]
) -> None:
    conn = connect_as_client_sync(project)
    conn.execute("set role service_role")
    assert conn.execute("select current_user").fetchone()[0] == "service_role"
    table = "public.clients" if project == "a" else "public.profiles"
    conn.execute(f"select count(*) from {table}")  # the service role's rights
    conn.execute("reset role")
    # What a booking does inside the service role's transaction (set_config('role', ...) checks session_user).
    conn.execute("set role service_role")
    conn.execute("select set_config('role', 'authenticated', true)")
    assert conn.execute("select current_user").fetchone()[0] == "authenticated"
    conn.rollback()
    conn.execute("set role authenticated")
    assert conn.execute("select current_user").fetchone()[0] == "authenticated"


@pytest.mark.parametrize("project", PROJECTS)
def test_client_sync_cannot_become_the_administrator_or_anon(
    project: str, connect_as_client_sync: Callable[[str], psycopg.Connection], db: Databases
) -> None:
    admin = db.a.execute("select current_user").fetchone()[0]
    assert admin != FUNCTIONS_ROLE
    for role in (admin, "anon"):
        conn = connect_as_client_sync(project)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        conn.close()


def _make_therapist(db: Databases, therapist_id: uuid.UUID) -> None:
    """A row in public.therapists, where Project A has that table (only therapists book)."""
    if db.a.execute("select to_regclass('public.therapists')").fetchone()[0] is None:
        return
    db.a.execute("insert into auth.users (id) values (%s) on conflict (id) do nothing", (therapist_id,))
    db.a.execute("insert into public.therapists (id) values (%s) on conflict (id) do nothing", (therapist_id,))


def test_the_functions_connect_as_client_sync(
    projects: LocalProjects, db: Databases, token: Callable[..., Any]
) -> None:
    _make_therapist(db, THERAPIST)
    client_id = uuid.uuid4()  # only in Project B: the booking reads Project B and writes Project A
    db.add_project_b_client(client_id, random_name(), random_email())

    response = function_client("create_session").post(
        "/",
        json={"client_id": str(client_id), "starts_at": "2030-01-15T10:00:00+00:00"},
        headers={"Authorization": f"Bearer {token(THERAPIST)}"},
    )

    assert response.status_code == 201, response.json
    assert response.json["client_synced"] is True
    logins = db.a.execute(
        """
        select datname, application_name, usename
          from pg_stat_activity
         where datname in (current_database(), %s) and application_name like 'client-sync-%%'
        """,
        (psycopg.conninfo.conninfo_to_dict(projects.project_b_url)["dbname"],),
    ).fetchall()
    names = {application_name for _, application_name, _ in logins}
    assert {"client-sync-project_a", "client-sync-project_b"} <= names
    assert {usename for _, _, usename in logins} == {FUNCTIONS_ROLE}
