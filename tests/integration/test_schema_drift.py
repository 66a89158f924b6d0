"""The migrations and the schema files declare the same database: one database is built from each, and their
`pg_dump --schema-only` (tables, columns, defaults, indexes, constraints, policies, grants, triggers, function
bodies and comments) must be the same, once normalized."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devtools.localdb import create_database
from ops.migrate import PROJECTS, Project, apply_migrations
from tests.random_refs import random_suffix

# pg_dump's object headers: "-- Name: clients; Type: TABLE; Schema: public; Owner: postgres".
_HEADER = re.compile(r"^-- (?:Data for )?Name: .*$", re.MULTILINE)
_NOISE = re.compile(r"^(--.*|SET .*|SELECT pg_catalog\.set_config\(.*|\\(un)?restrict .*|\s*)$")


def pg_dump_path() -> str:
    """pg_dump of the server's version: pgserver ships one; a TEST_DATABASE_URL server uses the one on PATH."""
    if not os.environ.get("TEST_DATABASE_URL"):
        import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
        if bundled.exists():
            return str(bundled)
    found = shutil.which("pg_dump")
    if found is None:
        pytest.fail("pg_dump is not on PATH")
    return found


def schema_dump(url: str) -> list[str]:
    """The schema of `url`'s database as pg_dump prints it, one normalized block per object, sorted: comments,
    settings and blank lines dropped, the migration ledger left out, the order of objects not compared."""
    dumped = subprocess.run(  # noqa: S603 (our pg_dump, our database URL)
        [pg_dump_path(), "--schema-only", "--exclude-schema=supabase_migrations", "--dbname", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    blocks = (
        "\n".join(line for line in block.splitlines() if not _NOISE.match(line)) for block in _HEADER.split(dumped)
    )
    return sorted(block for block in blocks if block)


@pytest.mark.parametrize("project", PROJECTS)
def test_the_migrations_and_the_schema_files_declare_the_same_database(
    projects: Any, schema_databases: dict[str, str], project: Project
) -> None:
    from_migrations = create_database(projects.server_url, f"migrations_{random_suffix()}_{project}")
    apply_migrations(from_migrations, project, local=True)
    migrated, declared = schema_dump(from_migrations), schema_dump(schema_databases[project])
    assert any("CREATE FUNCTION" in block for block in declared)  # the dump holds the schema, function bodies too
    drift = "\n".join(
        difflib.unified_diff(migrated, declared, "from the migrations", "from the schema files", lineterm="")
    )
    assert migrated == declared, f"{project}: the schema files and the migrations differ:\n{drift}"
