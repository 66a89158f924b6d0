"""The embedded Postgres (pgserver) or TEST_DATABASE_URL, with Project A and Project B databases."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ops.migrate import apply_migrations, load_seed

# The functions' login (db/client_sync_role.sql): executes the SQL surface's functions, may set authenticated.
FUNCTIONS_ROLE = "client_sync"
# PostgREST's login (devtools/platform/10_supabase_platform.sql), what devtools.postgrest connects as.
AUTHENTICATOR_ROLE = "authenticator"
# GoTrue's login (devtools/platform/10_supabase_platform.sql), what devtools.auth_admin connects as.
AUTH_ADMIN_ROLE = "supabase_auth_admin"


@dataclass(frozen=True)
class LocalProjects:
    """Connection URLs of the two local projects and of the server holding them.

    `project_a_url` and `project_b_url` log in as the server's administrator (migrations, sample data, tests
    arranging rows); `project_a_functions_url` and `project_b_functions_url` as client_sync, what the
    functions use.
    """

    server_url: str
    project_a_url: str
    project_b_url: str
    project_a_functions_url: str
    project_b_functions_url: str


def start_server(data_dir: Path | None = None) -> str:
    """TEST_DATABASE_URL when set, else an embedded Postgres in `data_dir` (stopped when this process exits)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    import tempfile

    import pgserver

    if data_dir is None:  # a throwaway server: deleted, data and all, when this process exits
        return pgserver.get_server(Path(tempfile.mkdtemp(prefix="pg-")), cleanup_mode="delete").get_uri()
    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(data_dir, cleanup_mode="stop").get_uri()


def database_url(server_url: str, name: str) -> str:
    return make_conninfo(server_url, dbname=name)


def create_database(server_url: str, name: str, *, recreate: bool = False) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists and recreate:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    return database_url(server_url, name)


def login_url(url: str, user: str, password: str | None) -> str:
    """`url` with another user and that user's password (none: the administrator's is never carried over)."""
    params = {key: value for key, value in conninfo_to_dict(url).items() if key != "password"}
    params["user"] = user
    if password:
        params["password"] = password
    return make_conninfo("", **params)


def _can_log_in(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=10):
            return True
    except psycopg.OperationalError:
        return False


def _login_password(server_url: str, role: str) -> str:
    """The password `role` gets on a server that asks for one.

    Derived from the administrator's password when there is one, so that every run against one server
    (tests in parallel, `make dev`, the benchmarks) sets the same password and none locks another out;
    random otherwise.
    """
    admin = conninfo_to_dict(server_url)
    admin_password = admin.get("password") or os.environ.get("PGPASSWORD")
    if not admin_password:
        return secrets.token_urlsafe(32)
    identity = f"{role}@{admin.get('host', '')}:{admin.get('port', '')}/{admin.get('user', '')}"
    return hmac.new(str(admin_password).encode(), identity.encode(), hashlib.sha256).hexdigest()


def role_login(server_url: str, database_url: str, role: str) -> str | None:
    """How `role` logs in to `database_url`'s server: None when no password is asked (pgserver's pg_hba.conf
    trusts local connections), else the password, set on the role by the administrator."""
    if _can_log_in(login_url(database_url, role, None)):
        return None
    password = _login_password(server_url, role)
    if not _can_log_in(login_url(database_url, role, password)):
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("alter role {} with password {}").format(sql.Identifier(role), sql.Literal(password)))
        if not _can_log_in(login_url(database_url, role, password)):
            raise RuntimeError(
                f"{role} cannot log in to {conninfo_to_dict(database_url).get('dbname')} even with the"
                " password just set: does the server's pg_hba.conf let it in?"
            )
    return password


def functions_login(server_url: str, database_url: str) -> str | None:
    """How client_sync logs in to `database_url`'s server (see role_login)."""
    return role_login(server_url, database_url, FUNCTIONS_ROLE)


def authenticator_url(server_url: str, database_url: str) -> str:
    """`database_url` as PostgREST's login, authenticator (for devtools.postgrest)."""
    return login_url(database_url, AUTHENTICATOR_ROLE, role_login(server_url, database_url, AUTHENTICATOR_ROLE))


def auth_admin_url(server_url: str, database_url: str) -> str:
    """`database_url` as GoTrue's login, supabase_auth_admin (for devtools.auth_admin)."""
    return login_url(database_url, AUTH_ADMIN_ROLE, role_login(server_url, database_url, AUTH_ADMIN_ROLE))


def prepare_projects(server_url: str, *, prefix: str = "", seed: bool = False, recreate: bool = False) -> LocalProjects:
    """Create `{prefix}project_a` and `{prefix}project_b`, migrate them, and load the sample data if asked."""
    project_a = create_database(server_url, f"{prefix}project_a", recreate=recreate)
    project_b = create_database(server_url, f"{prefix}project_b", recreate=recreate)
    apply_migrations(project_a, "project_a", local=True)
    apply_migrations(project_b, "project_b", local=True)
    if seed:
        load_seed(project_a, "project_a")
        load_seed(project_b, "project_b")
    password = functions_login(server_url, project_a)  # after the migrations: their roles file creates it
    return LocalProjects(
        server_url=server_url,
        project_a_url=project_a,
        project_b_url=project_b,
        project_a_functions_url=login_url(project_a, FUNCTIONS_ROLE, password),
        project_b_functions_url=login_url(project_b, FUNCTIONS_ROLE, password),
    )


def register_therapists(project_a_url: str, therapist_ids: Iterable[UUID]) -> None:
    """Make these users of Project A therapists (auth.users, then public.therapists)."""
    ids = [str(therapist_id) for therapist_id in therapist_ids]
    with psycopg.connect(project_a_url, autocommit=True) as conn:
        conn.execute("insert into auth.users (id) select unnest(%s::uuid[]) on conflict (id) do nothing", (ids,))
        conn.execute("insert into public.therapists (id) select unnest(%s::uuid[]) on conflict (id) do nothing", (ids,))
