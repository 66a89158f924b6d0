"""Every pooled connection of either project stays the functions' login, client_sync, with the configured timeouts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from devtools.localdb import FUNCTIONS_ROLE
from shared.config import Project, get_settings
from shared.stores.pools import get_pool, pooled_connection


def session_state(project: Project) -> tuple[str, int, int]:
    """The role and the statement and lock timeouts (ms) of a connection from the project's pool."""
    settings = get_settings()
    url = settings.project_a_db_url if project == "project_a" else settings.project_b_db_url
    assert url is not None
    with pooled_connection(get_pool(project, url.get_secret_value(), settings)) as conn:
        return conn.execute(
            "select current_user::text,"
            " (select setting::int from pg_settings where name = 'statement_timeout'),"
            " (select setting::int from pg_settings where name = 'lock_timeout')"
        ).fetchone()


@pytest.mark.parametrize(("project", "statement_timeout"), [("project_a", 2345), ("project_b", 3456)], ids=["A", "B"])
def test_each_projects_connections_get_their_statement_timeout_and_the_lock_timeout(
    reconfigure: Callable[..., None], project: Project, statement_timeout: int
) -> None:
    reconfigure(PROJECT_A_STATEMENT_TIMEOUT_MS="2345", PROJECT_B_STATEMENT_TIMEOUT_MS="3456", DB_LOCK_TIMEOUT_MS="789")
    assert session_state(project) == (FUNCTIONS_ROLE, statement_timeout, 789)


def test_the_defaults_are_set(projects: Any) -> None:
    settings = get_settings()
    for project, timeout in (
        ("project_a", settings.project_a_statement_timeout_ms),
        ("project_b", settings.project_b_statement_timeout_ms),
    ):
        assert session_state(project) == (FUNCTIONS_ROLE, timeout, settings.db_lock_timeout_ms)


def test_a_statement_over_the_timeout_is_cancelled(reconfigure: Callable[..., None]) -> None:
    reconfigure(PROJECT_A_STATEMENT_TIMEOUT_MS="200")
    settings = get_settings()
    assert settings.project_a_db_url is not None
    pool = get_pool("project_a", settings.project_a_db_url.get_secret_value(), settings)
    with pooled_connection(pool) as conn, pytest.raises(psycopg.errors.QueryCanceled):
        conn.execute("select pg_sleep(2)")
