"""Applies a project's migrations (db/<project>/supabase/migrations) and records them in the Supabase CLI's
ledger, so that this runner and `supabase --workdir db/<project> db push` can migrate the same database and
neither applies a file twice. The tests, `make dev` and `python -m ops.migrate project_a|project_b` use it.

What it does is what `supabase db push --include-roles` does (supabase/cli, internal/db/push/push.go and
pkg/migration): the custom roles file `supabase/roles.sql` first (not recorded: it creates only what is
missing), then each pending `<version>_<name>.sql` in version order, its statements split as the CLI splits
them and run in one transaction, with the row (version, name, statements) inserted into
supabase_migrations.schema_migrations in that same transaction.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import psycopg

from ops.statements import split_statements

ROOT = Path(__file__).resolve().parent.parent
DB_DIR = ROOT / "db"
# Stand-ins for what hosted Supabase provides (API roles, auth, Vault, pg_net, supabase_functions): local only.
PLATFORM_DIR = ROOT / "devtools" / "platform"

Project = Literal["project_a", "project_b"]
PROJECTS: tuple[Project, ...] = ("project_a", "project_b")

# The CLI's ledger, as pkg/migration/history.go creates it.
_LEDGER = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
)
# The CLI's file name pattern (pkg/migration/file.go): the version is the digits before the first underscore.
_MIGRATION_NAME = re.compile(r"^([0-9]+)_(.*)\.sql$")
_LOCK = "hashtext('migrations')"


def supabase_dir(project: Project) -> Path:
    """The project's Supabase CLI directory: `supabase --workdir db/<project>` reads it."""
    return DB_DIR / project / "supabase"


def migration_files(project: Project) -> list[Path]:
    """The project's migrations in the order the CLI applies them (by version)."""
    named = (path for path in (supabase_dir(project) / "migrations").glob("*.sql") if _MIGRATION_NAME.match(path.name))
    return sorted(named, key=lambda path: path.name)


def schema_files(project: Project) -> list[Path]:
    """The project's declarative schema, in the order the CLI applies it (lexicographic)."""
    return sorted((supabase_dir(project) / "schemas").glob("*.sql"))


def platform_files() -> list[Path]:
    return sorted(PLATFORM_DIR.glob("*.sql"))


def _run_file(conn: psycopg.Connection, path: Path, *, record: bool = False) -> None:
    """Run the statements of `path` in one transaction, as the CLI runs a file, and with `record` insert the
    migration's row into the ledger in that transaction."""
    statements = split_statements(path.read_text())
    conn.execute("reset all")  # as the CLI does before each file: no setting of the previous one carries over
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)
        if record:
            version, name = _version_and_name(path)
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements) values (%s, %s, %s)",
                (version, name, statements),
            )


def _prepare(conn: psycopg.Connection, project: Project, *, local: bool) -> None:
    """The platform stand-ins when `local` (idempotent, never recorded), then the project's roles file."""
    for path in (platform_files() if local else []) + [supabase_dir(project) / "roles.sql"]:
        _run_file(conn, path)


def apply_migrations(conninfo: str, project: Project, *, local: bool) -> list[str]:
    """Apply the roles file and the migrations the ledger lacks, each in its own transaction; returns the file names
    applied.

    `local=True` first applies devtools/platform (roles, auth, Vault, pg_net as Supabase has them): never on a
    Supabase project.
    """
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # One runner at a time per database; the lock goes with the session.
        conn.execute(f"select pg_advisory_lock({_LOCK})")
        try:
            _prepare(conn, project, local=local)
            return apply_pending(conn, project)
        finally:
            conn.execute(f"select pg_advisory_unlock({_LOCK})")


def apply_pending(conn: psycopg.Connection, project: Project) -> list[str]:
    """What `db push` without `--include-roles` does on `conn` (autocommit), as its current role: create the
    ledger if missing, then apply and record each migration it lacks. Returns the file names applied."""
    for statement in _LEDGER:
        conn.execute(statement)
    done = {version for (version,) in conn.execute("select version from supabase_migrations.schema_migrations")}
    if not done and conn.execute("select to_regclass('migrations.applied')").fetchone() != (None,):
        raise RuntimeError(
            f"{project}: this database was migrated before the Supabase CLI's ledger (migrations.applied);"
            " start it again from the migrations (for make dev: delete .dev/ while it is stopped)"
        )
    files = migration_files(project)
    unknown = done - {_version_and_name(path)[0] for path in files}
    if unknown:  # as the CLI refuses to push: the database has history this checkout does not
        raise RuntimeError(f"{project}: applied migrations not in {supabase_dir(project)}: {sorted(unknown)}")
    applied_now: list[str] = []
    for path in files:
        if _version_and_name(path)[0] not in done:
            _run_file(conn, path, record=True)
            applied_now.append(path.name)
    return applied_now


def _version_and_name(path: Path) -> tuple[str, str]:
    match = _MIGRATION_NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path.name} is not named <version>_<name>.sql")
    return match.group(1), match.group(2)


def build_from_schemas(conninfo: str, project: Project, *, local: bool) -> None:
    """Build the project's database from its declarative schema files instead of its migrations (an empty
    database): what the drift test compares with the migrations, and what ops.sql_surface reads."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        _prepare(conn, project, local=local)
        for path in schema_files(project):
            _run_file(conn, path)


def load_seed(conninfo: str, project: Project) -> None:
    """Load the sample data of `project`, supabase/seed.sql (idempotent: it upserts)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        _run_file(conn, supabase_dir(project) / "seed.sql")


def main(argv: list[str] | None = None) -> None:
    """`python -m ops.migrate project_a|project_b` migrates the database of PROJECT_A/B_DB_URL."""
    import os
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in PROJECTS:
        raise SystemExit("usage: python -m ops.migrate project_a|project_b")
    project: Project = args[0]
    url = os.environ.get(f"{project.upper()}_DB_URL")
    if not url:
        raise SystemExit(f"{project.upper()}_DB_URL is not set")
    for name in apply_migrations(url, project, local=False) or ["nothing to apply"]:
        print(name)


if __name__ == "__main__":
    main()
