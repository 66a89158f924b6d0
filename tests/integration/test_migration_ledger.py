"""ops.migrate records what it applies in the Supabase CLI's ledger, as the CLI would, so that either tool can
migrate a database and neither applies a file twice."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from devtools.localdb import create_database
from ops.migrate import PROJECTS, Project, apply_migrations, migration_files, platform_files
from ops.statements import split_statements
from tests.random_refs import random_suffix


@pytest.mark.parametrize("project", PROJECTS)
def test_each_migration_is_recorded_as_the_cli_records_it(projects: Any, project: Project) -> None:
    url = projects.project_a_url if project == "project_a" else projects.project_b_url
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select version, name, statements from supabase_migrations.schema_migrations order by version"
        ).fetchall()
    expected = [(*path.stem.split("_", 1), split_statements(path.read_text())) for path in migration_files(project)]
    assert rows == expected


def test_a_migration_the_cli_applied_is_not_applied_again(projects: Any) -> None:
    """A database the CLI pushed the baseline to (its platform there already) gets only what follows it."""
    url = create_database(projects.server_url, f"ledger_{random_suffix()}")
    baseline, *later = migration_files("project_a")
    version, name = baseline.stem.split("_", 1)
    statements = split_statements(baseline.read_text())
    with psycopg.connect(url) as conn:
        for path in platform_files():
            conn.execute(path.read_text())
        # What `supabase db push` runs (pkg/migration/history.go, file.go): the ledger, the file, its row.
        conn.execute("create schema if not exists supabase_migrations")
        conn.execute("create table supabase_migrations.schema_migrations (version text not null primary key)")
        conn.execute("alter table supabase_migrations.schema_migrations add column if not exists statements text[]")
        conn.execute("alter table supabase_migrations.schema_migrations add column if not exists name text")
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "insert into supabase_migrations.schema_migrations (version, name, statements) values (%s, %s, %s)",
            (version, name, statements),
        )
    assert later
    assert apply_migrations(url, "project_a", local=True) == [path.name for path in later]
    assert apply_migrations(url, "project_a", local=True) == []


def test_a_database_with_history_this_checkout_lacks_is_refused(projects: Any) -> None:
    url = create_database(projects.server_url, f"ledger_{random_suffix()}")
    apply_migrations(url, "project_b", local=True)
    with psycopg.connect(url) as conn:
        conn.execute("insert into supabase_migrations.schema_migrations (version, name) values ('29991231000000', 'x')")
    with pytest.raises(RuntimeError, match="29991231000000"):
        apply_migrations(url, "project_b", local=True)


def test_a_database_of_the_old_runner_is_refused_with_what_to_do(projects: Any) -> None:
    """A `.dev/` made before the ledger: its tables exist, its ledger is empty; re-running the baseline would fail
    halfway."""
    url = create_database(projects.server_url, f"ledger_{random_suffix()}")
    with psycopg.connect(url) as conn:
        conn.execute("create schema migrations")
        conn.execute("create table migrations.applied (folder text, name text)")
    with pytest.raises(RuntimeError, match=r"delete \.dev/"):
        apply_migrations(url, "project_a", local=True)
