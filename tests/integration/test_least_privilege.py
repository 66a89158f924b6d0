"""The functions' login, client_sync: it calls the SQL surface as itself and can do nothing else.

It may execute the surface's functions; it has no privilege on any table; the one role it may set is
`authenticated`, where row level security shows it nothing without a therapist's claims. Connected as client_sync
(the projects fixture's *_functions_url), as the functions are.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from devtools.localdb import FUNCTIONS_ROLE, LocalProjects, create_database
from ops.migrate import ROOT, apply_migrations
from tests.conftest import OTHER_THERAPIST, THERAPIST, Databases
from tests.integration.helpers import function_client
from tests.random_refs import random_email, random_name, random_suffix

PROJECTS = ("a", "b")
DDL = {
    "table": "create table public.least_privilege_probe (id integer)",
    "schema": "create schema least_privilege_probe",
    "function": "create function public.least_privilege_probe() returns integer language sql as 'select 1'",
}
# What the tables hold: each is refused to the login itself, and to `authenticated` either refused or, without
# a therapist's claims, empty under row level security.
TABLES = [
    ("a", "public.clients"),
    ("a", "public.sessions"),
    ("a", "public.therapists"),
    ("a", "auth.users"),
    ("a", "private.sync_conflicts"),
    ("a", "private.sync_state"),
    ("b", "public.profiles"),
    ("b", "auth.users"),
    ("b", "private.profile_deletions"),
]

# Everything client_sync may do in each project, PUBLIC's grants included: a grant added later fails
# test_client_sync_may_do_this_and_nothing_more until it is written here.
MEMBERSHIP = "member of authenticated (admin false, inherit false, set true)"
COMMON = ["database CONNECT", "database TEMPORARY", MEMBERSHIP, "schema public USAGE"]
ALLOWED = {
    "a": sorted(
        [
            *COMMON,
            "function public.apply_sync_page(p_clients jsonb, p_absences jsonb, p_state_name text,"
            " p_watermark timestamp with time zone, p_watermark_id uuid, p_run jsonb)",
            "function public.apply_sync_page_dry_run(p_clients jsonb, p_absences jsonb, p_state_name text,"
            " p_watermark timestamp with time zone, p_watermark_id uuid, p_run jsonb)",
            "function public.archive_synced_clients(p_absences jsonb)",
            "function public.book_session_as(p_claims jsonb, p_client_id uuid, p_starts_at timestamp with time zone,"
            " p_duration_minutes integer, p_notes text, p_idempotency_key text, p_client jsonb)",
            "function public.copy_client_for_booking(p_client_id uuid, p_client jsonb)",
            "function public.client_to_invite_as(p_claims jsonb, p_client_id uuid)",
            "function public.link_client_as(p_claims jsonb, p_client_id uuid, p_project_b_user_id uuid,"
            " p_email_confirmed boolean, p_client jsonb)",
            "function public.link_suggestions_for(p_claims jsonb, p_limit integer)",
            "function public.open_conflict_ids(p_after uuid, p_limit integer)",
            "function public.record_invite_as(p_claims jsonb, p_client_id uuid, p_client jsonb)",
            "function public.reject_link_as(p_claims jsonb, p_client_id uuid, p_project_b_user_id uuid)",
            "function public.sync_client_as(p_claims jsonb, p_client_id uuid, p_client jsonb, p_absence jsonb)",
            "function public.sync_conflicts(p_include_resolved boolean, p_limit integer)",
            "function public.sync_status()",
            "function public.sync_watermark(p_name text)",
            "function public.synced_client_ids(p_after uuid, p_limit integer)",
            "function public.upsert_synced_clients(p_clients jsonb, p_therapist_id uuid)",
        ]
    ),
    "b": sorted(
        [
            *COMMON,
            "function public.client_changes(p_since timestamp with time zone, p_since_id uuid, p_limit integer)",
            "function public.client_page(p_after uuid, p_limit integer, p_until uuid)",
            "function public.client_states(p_ids uuid[])",
            "function public.create_invited_profile(p_id uuid, p_name text)",
            "function public.email_confirmed(p_user_id uuid, p_email text)",
            "function public.invite_target(p_id uuid, p_email text)",
        ]
    ),
}

# Effective privileges of client_sync (its own and PUBLIC's; NOINHERIT: not authenticated's) on every schema,
# table, column, sequence and callable function outside the system catalogs, on this database, and its memberships.
_PRIVILEGES = """
with me as (select %(role)s::regrole as r),
schemas as (
  select n.oid, n.nspname from pg_namespace n
   where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%%'
),
rels as (
  select c.oid, c.relkind from pg_class c join schemas s on s.oid = c.relnamespace
   where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
)
select format('schema %%I %%s', s.nspname, p) from schemas s, unnest(array['USAGE', 'CREATE']) p, me
 where has_schema_privilege(me.r, s.oid, p)
union all
select format('table %%s %%s', r.oid::regclass, p) from rels r, me,
       unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
 where r.relkind <> 'S' and has_table_privilege(me.r, r.oid, p)
union all
select format('column %%s.%%I %%s', r.oid::regclass, a.attname, p) from rels r, me,
       pg_attribute a, unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
 where a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped and r.relkind <> 'S'
   and has_column_privilege(me.r, r.oid, a.attnum, p)
union all
select format('sequence %%s %%s', r.oid::regclass, p) from rels r, unnest(array['USAGE', 'SELECT', 'UPDATE']) p, me
 where r.relkind = 'S' and has_sequence_privilege(me.r, r.oid, p)
union all
select format('function %%I.%%I(%%s)', s.nspname, f.proname, pg_get_function_identity_arguments(f.oid))
  from pg_proc f join schemas s on s.oid = f.pronamespace, me
 where has_schema_privilege(me.r, s.oid, 'USAGE') and has_function_privilege(me.r, f.oid, 'EXECUTE')
union all
select 'database ' || p from unnest(array['CREATE', 'CONNECT', 'TEMPORARY']) p, me
 where has_database_privilege(me.r, current_database(), p)
union all
select format('member of %%s (admin %%s, inherit %%s, set %%s)', m.roleid::regrole, m.admin_option::text,
              coalesce(to_jsonb(m) ->> 'inherit_option', 'false'), coalesce(to_jsonb(m) ->> 'set_option', 'true'))
  from pg_auth_members m, me where m.member = me.r
order by 1
"""

# Every role client_sync can become, directly or through others (pg_auth_members, transitively).
_REACHABLE_ROLES = """
with recursive reachable (oid) as (
  select roleid from pg_auth_members where member = %s::regrole
  union
  select m.roleid from pg_auth_members m join reachable r on m.member = r.oid
)
select r.rolname, r.rolsuper, r.rolbypassrls,
       exists (select 1 from pg_class c where c.relowner = r.oid and c.relkind in ('r', 'p')) as owns_a_table
  from reachable x join pg_roles r on r.oid = x.oid
 order by 1
"""


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


@pytest.fixture(scope="module")
def migrated(projects: LocalProjects) -> Iterator[dict[str, psycopg.Connection]]:
    """An administrator's connection to a database per project ("a", "b") built from its migrations alone: what a
    push deploys, without what other tests add to the shared ones (a function of theirs would be callable)."""
    conns: dict[str, psycopg.Connection] = {}
    for project, name in (("a", "project_a"), ("b", "project_b")):
        url = create_database(projects.server_url, f"privileges_{random_suffix()}_{name}")
        apply_migrations(url, name, local=True)
        conns[project] = psycopg.connect(url, autocommit=True)
    yield conns
    for conn in conns.values():
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


@pytest.mark.parametrize("project", PROJECTS)
def test_client_sync_may_do_this_and_nothing_more(project: str, migrated: dict[str, psycopg.Connection]) -> None:
    granted = [row[0] for row in migrated[project].execute(_PRIVILEGES, {"role": FUNCTIONS_ROLE})]
    assert granted == ALLOWED[project]


@pytest.mark.parametrize("project", PROJECTS)
def test_no_role_client_sync_can_become_sees_past_row_level_security(
    project: str, migrated: dict[str, psycopg.Connection]
) -> None:
    reachable = migrated[project].execute(_REACHABLE_ROLES, (FUNCTIONS_ROLE,)).fetchall()
    # authenticated: no superuser, no bypassrls, owner of no table, and a member of nothing itself.
    assert reachable == [("authenticated", False, False, False)]


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
@pytest.mark.parametrize("role", [None, "authenticated"], ids=lambda role: role or "login")
@pytest.mark.parametrize("kind", DDL)
def test_client_sync_cannot_create_anything(
    project: str, role: str | None, kind: str, connect_as_client_sync: Callable[[str], psycopg.Connection]
) -> None:
    conn = connect_as_client_sync(project)
    if role:
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(DDL[kind])


@pytest.fixture
def rows_everywhere(db: Databases) -> None:
    """A client with a session in Project A and a profile in Project B, so that an empty answer means hidden."""
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, THERAPIST, random_name())
    db.a.execute(
        "insert into public.sessions (client_id, therapist_id, starts_at) values (%s, %s, now())",
        (client_id, THERAPIST),
    )
    db.add_project_b_client(client_id, random_name(), random_email())


@pytest.mark.usefixtures("rows_everywhere")
@pytest.mark.parametrize(("project", "table"), TABLES)
def test_client_sync_reads_no_table_as_itself_nor_as_authenticated(
    project: str, table: str, connect_as_client_sync: Callable[[str], psycopg.Connection]
) -> None:
    conn = connect_as_client_sync(project)
    conn.autocommit = True
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(f"select count(*) from {table}")
    settable = [
        role
        for (role,) in conn.execute(
            "select rolname from pg_roles where rolname <> session_user and pg_has_role(session_user, oid, 'member')"
        )
    ]
    assert settable  # authenticated, which a booking needs
    for role in settable:
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        try:
            visible = conn.execute(f"select count(*) from {table}").fetchone()[0]
        except errors.InsufficientPrivilege:
            continue
        finally:
            conn.execute("reset role")
        assert visible == 0, role  # granted to the role, and row level security shows nothing without claims


@pytest.mark.parametrize("project", PROJECTS)
def test_client_sync_can_set_no_role_but_authenticated(
    project: str, connect_as_client_sync: Callable[[str], psycopg.Connection], db: Databases
) -> None:
    conn = connect_as_client_sync(project)
    conn.autocommit = True
    for role in ("service_role", "postgres", "anon", "supabase_admin", db.a.info.user):
        exists = conn.execute("select exists (select 1 from pg_roles where rolname = %s)", (role,)).fetchone()[0]
        if not exists:
            continue
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("select set_config('role', %s, false)", (role,))
    conn.execute("set role authenticated")
    assert conn.execute("select current_user").fetchone()[0] == "authenticated"


def test_a_booking_books_as_the_therapist_under_row_level_security(
    connect_as_client_sync: Callable[[str], psycopg.Connection], db: Databases
) -> None:
    theirs = uuid.uuid4()
    db.add_project_a_client(theirs, OTHER_THERAPIST, random_name("Theirs"))
    claims = json.dumps({"sub": str(THERAPIST), "role": "authenticated"})
    conn = connect_as_client_sync("a")
    booking = "select public.book_session_as(%s, %s, now(), 50, null, null)"
    answer = conn.execute(booking, (claims, theirs)).fetchone()[0]
    assert answer["outcome"] == "not_found"
    # The rest of the booking's transaction is the therapist's: authenticated, with the claims.
    assert conn.execute("select current_user, auth.uid()").fetchone() == ("authenticated", THERAPIST)


def functions_the_code_calls() -> set[str]:
    """The SQL functions shared/stores/postgres.py calls, by name."""
    source = (ROOT / "shared" / "stores" / "postgres.py").read_text()
    return set(re.findall(r"\bpublic\.(\w+)\(", source))


def test_client_sync_may_execute_every_function_the_code_calls(migrated: dict[str, psycopg.Connection]) -> None:
    called = functions_the_code_calls()
    assert {"book_session_as", "apply_sync_page", "client_states", "client_changes"} <= called
    executable: set[str] = set()
    for conn in migrated.values():
        rows = conn.execute(
            "select p.proname, bool_and(has_function_privilege(%s, p.oid, 'EXECUTE'))"
            " from pg_proc p where p.pronamespace = 'public'::regnamespace and p.proname = any(%s) group by 1",
            (FUNCTIONS_ROLE, list(called)),
        ).fetchall()
        executable |= {name for name, allowed in rows if allowed}
    assert executable == called


@pytest.mark.parametrize("project", PROJECTS)
def test_what_client_sync_calls_sees_past_row_level_security_only_as_a_pinned_definer_of_the_tables_owner(
    project: str, migrated: dict[str, psycopg.Connection]
) -> None:
    conn = migrated[project]
    table = "public.clients" if project == "a" else "public.profiles"
    rows = conn.execute(
        """
        select p.proname, p.prosecdef, p.proowner = (select relowner from pg_class where oid = %s::regclass),
               'search_path=""' = any(coalesce(p.proconfig, '{}'))
          from pg_proc p
         where p.pronamespace = 'public'::regnamespace and has_function_privilege(%s, p.oid, 'EXECUTE')
         order by 1
        """,
        (table, FUNCTIONS_ROLE),
    ).fetchall()
    assert rows
    for name, definer, owned_by_the_tables_owner, pinned in rows:
        assert pinned, name
        assert owned_by_the_tables_owner, name
        # book_session_as must stay an invoker: it switches to authenticated, which a definer may not.
        assert definer == (name != "book_session_as"), name


@pytest.mark.parametrize("project", PROJECTS)
def test_the_api_users_execute_no_function_of_the_surface_but_create_session(
    project: str, migrated: dict[str, psycopg.Connection]
) -> None:
    conn = migrated[project]
    rows = conn.execute(
        """
        select r.rolname, p.proname from pg_proc p, pg_roles r
         where p.pronamespace = 'public'::regnamespace and r.rolname in ('anon', 'authenticated')
           and has_function_privilege(r.oid, p.oid, 'EXECUTE')
         order by 1, 2
        """
    ).fetchall()
    assert rows == ([("authenticated", "create_session")] if project == "a" else [])


def test_the_roles_file_takes_away_service_role_and_table_grants_but_keeps_the_surface(
    projects: LocalProjects, db: Databases
) -> None:
    """What an earlier version (or a hand) granted goes on the next push; the migrations' EXECUTE stays."""
    db.a.execute("grant service_role to client_sync")
    db.a.execute("grant select on public.clients to client_sync")
    db.a.execute("grant usage on schema private to client_sync")
    try:
        apply_migrations(projects.project_a_url, "project_a", local=True)  # runs supabase/roles.sql again
    finally:
        check = db.a.execute(
            """
            select pg_has_role('client_sync', 'service_role', 'member'),
                   has_table_privilege('client_sync', 'public.clients', 'select'),
                   has_schema_privilege('client_sync', 'private', 'usage'),
                   has_function_privilege('client_sync', 'public.upsert_synced_clients(jsonb, uuid)', 'execute')
            """
        ).fetchone()
        db.a.execute("revoke service_role from client_sync")
        db.a.execute("revoke all on public.clients from client_sync")
        db.a.execute("revoke all on schema private from client_sync")
    assert check == (False, False, False, True)


def _make_therapist(db: Databases, therapist_id: uuid.UUID) -> None:
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
