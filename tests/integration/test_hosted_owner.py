"""The migrations need no superuser: on a hosted project `postgres` runs them and is not one. Here a role like
it (no superuser, owner of the database, with the privileges on `auth` that Supabase gives `postgres`) applies
every migration; it then owns the tables and the surface's functions, and client_sync can call them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from devtools.localdb import FUNCTIONS_ROLE, database_url
from ops.migrate import PROJECTS, Project, apply_pending, migration_files, platform_files
from tests.random_refs import random_suffix

# What a hosted project's `postgres` may do in `auth` (it references and triggers on auth.users) and in `vault`
# (supabase/vault's extension script grants it the schema, its secrets and their decrypted view), and the default
# privileges Supabase sets for the objects it creates in public.
_HOSTED_GRANTS = """
grant usage on schema auth to {owner};
grant all on auth.users to {owner};
grant usage on schema vault to {owner};
grant select, delete on vault.secrets, vault.decrypted_secrets to {owner};
grant execute on all functions in schema vault to {owner};
alter default privileges for role {owner} in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges for role {owner} in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges for role {owner} in schema public grant all on sequences to anon, authenticated, service_role
"""


@pytest.fixture
def hosted_owner(projects: Any) -> Iterator[tuple[str, str]]:
    """A role like a hosted project's `postgres` and an empty database it owns: (role, database name)."""
    owner, database = f"hosted_postgres_{random_suffix()}", f"hosted_{random_suffix()}"
    with psycopg.connect(projects.server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} nologin nosuperuser").format(sql.Identifier(owner)))
        conn.execute(sql.SQL("create database {} owner {}").format(sql.Identifier(database), sql.Identifier(owner)))
    yield owner, database
    with psycopg.connect(projects.server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("drop role {}").format(sql.Identifier(owner)))


@pytest.mark.parametrize("project", PROJECTS)
def test_the_migrations_need_no_superuser(projects: Any, hosted_owner: tuple[str, str], project: Project) -> None:
    owner, database = hosted_owner
    url = database_url(projects.server_url, database)
    with psycopg.connect(url, autocommit=True) as conn:
        for path in platform_files():  # what the platform provides, made by its own administrator
            conn.execute(path.read_text())
        for statement in _HOSTED_GRANTS.split(";"):
            conn.execute(sql.SQL(statement).format(owner=sql.Identifier(owner)))
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(owner)))
        assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (False,)
        # `db push` as the owner: the CLI's ledger is then the owner's too.
        assert apply_pending(conn, project) == [path.name for path in migration_files(project)]
        conn.execute("reset role")
        not_owned = conn.execute(
            """
            select 'table ' || c.oid::regclass from pg_class c
             where c.relnamespace in ('public'::regnamespace, 'private'::regnamespace) and c.relkind = 'r'
               and c.relowner <> %(owner)s::regrole
            union all
            select 'function ' || p.oid::regprocedure from pg_proc p
             where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
               and p.proowner <> %(owner)s::regrole
            """,
            {"owner": owner},
        ).fetchall()
        assert not_owned == []

    surface_call = (
        "select count(*) from public.synced_client_ids(null, 10)"
        if project == "project_a"
        else "select count from public.client_page(null, 10)"
    )
    with psycopg.connect(projects.project_a_functions_url, dbname=database) as conn:
        assert conn.execute("select current_user").fetchone() == (FUNCTIONS_ROLE,)
        assert conn.execute(surface_call).fetchone() == (0,)
