"""The embedded Postgres (pgserver) or TEST_DATABASE_URL, with Project A and Project B databases."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from shared.migrations import apply_migrations, load_seed


@dataclass(frozen=True)
class LocalProjects:
    """Connection URLs of the two local projects and of the server holding them."""

    server_url: str
    project_a_url: str
    project_b_url: str


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


def prepare_projects(server_url: str, *, prefix: str = "", seed: bool = False, recreate: bool = False) -> LocalProjects:
    """Create `{prefix}project_a` and `{prefix}project_b`, migrate them, and load the sample data if asked."""
    project_a = create_database(server_url, f"{prefix}project_a", recreate=recreate)
    project_b = create_database(server_url, f"{prefix}project_b", recreate=recreate)
    apply_migrations(project_a, "project_a", local=True)
    apply_migrations(project_b, "project_b", local=True)
    if seed:
        load_seed(project_a, "project_a")
        load_seed(project_b, "project_b")
    return LocalProjects(server_url=server_url, project_a_url=project_a, project_b_url=project_b)
