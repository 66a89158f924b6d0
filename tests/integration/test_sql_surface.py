"""docs/sql-surface.md's tables are what the schema files declare, and they list every SQL function the code
calls."""

from __future__ import annotations

import difflib
import re

from ops.migrate import PROJECTS, ROOT
from ops.sql_surface import DOC, documented_names, documented_section, render, surface


def test_the_doc_lists_the_functions_as_the_schema_files_declare_them(schema_databases: dict[str, str]) -> None:
    generated = render({project: surface(schema_databases[project]) for project in PROJECTS})
    documented = documented_section(DOC.read_text())
    stale = "\n".join(
        difflib.unified_diff(documented.splitlines(), generated.splitlines(), "doc", "schemas", lineterm="")
    )
    assert documented == generated, f"docs/sql-surface.md is stale: run `python -m ops.sql_surface`\n{stale}"


def test_every_function_of_the_sql_surface_says_what_it_does(schema_databases: dict[str, str]) -> None:
    undocumented = [
        function.name
        for project in PROJECTS
        for function in surface(schema_databases[project])
        if not function.description
    ]
    assert undocumented == [], "add `comment on function` to the schema file (and a migration) for these"


def test_every_function_the_code_calls_is_in_the_doc() -> None:
    """The stores run every statement of the functions, each a call of one SQL function."""
    called = {
        name
        for path in (ROOT / "shared" / "stores").rglob("*.py")
        for name in re.findall(r"\b(public\.[a-z_]+)\(", path.read_text())
    }
    assert {"public.book_session_as", "public.client_page"} <= called  # the search finds the calls of both projects
    assert called - documented_names(DOC.read_text()) == set()
