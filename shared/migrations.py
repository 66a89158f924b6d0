"""Applies the numbered, forward-only SQL migrations; the tests and `make dev` both call this."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import psycopg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SEED_DIR = Path(__file__).resolve().parent.parent / "seed"

Project = Literal["project_a", "project_b"]

_LEDGER = """
create schema if not exists migrations;
create table if not exists migrations.applied (
  folder text not null,
  name text not null,
  applied_at timestamptz not null default now(),
  primary key (folder, name)
)
"""


def migration_files(project: Project, *, local: bool) -> list[Path]:
    """The files to apply to `project`, in order: the local platform first when asked."""
    folders = (["local"] if local else []) + [project]
    return [path for folder in folders for path in sorted((MIGRATIONS_DIR / folder).glob("[0-9]*.sql"))]


def apply_migrations(conninfo: str, project: Project, *, local: bool) -> list[str]:
    """Apply what has not been applied yet, each file in its own transaction; returns the names applied.

    `local=True` adds migrations/local (roles and auth as Supabase has them): never on a Supabase project.
    """
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # One runner at a time per database; the lock goes with the session.
        conn.execute("select pg_advisory_lock(hashtext('migrations'))")
        try:
            conn.execute(_LEDGER)
            done = {(folder, name) for folder, name in conn.execute("select folder, name from migrations.applied")}
            for path in migration_files(project, local=local):
                key = (path.parent.name, path.name)
                if key in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute("insert into migrations.applied (folder, name) values (%s, %s)", key)
                applied_now.append(f"{key[0]}/{key[1]}")
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('migrations'))")
    return applied_now


def load_seed(conninfo: str, project: Project) -> None:
    """Load the sample data of `project` (idempotent: the seed files upsert)."""
    with psycopg.connect(conninfo) as conn:
        conn.execute((SEED_DIR / f"{project}.sql").read_text())


def main(argv: list[str] | None = None) -> None:
    """`python -m shared.migrations project_a|project_b` applies to the database of PROJECT_A/B_DB_URL."""
    import os
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ("project_a", "project_b"):
        raise SystemExit("usage: python -m shared.migrations project_a|project_b")
    project: Project = args[0]  # type: ignore[assignment]
    url = os.environ.get(f"{project.upper()}_DB_URL")
    if not url:
        raise SystemExit(f"{project.upper()}_DB_URL is not set")
    for name in apply_migrations(url, project, local=False) or ["nothing to apply"]:
        print(name)


if __name__ == "__main__":
    main()
