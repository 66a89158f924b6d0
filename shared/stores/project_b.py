"""Project B: reads a client's profile and email in one query, as the service role."""

from __future__ import annotations

from uuid import UUID

from psycopg.rows import dict_row

from shared.config import Settings
from shared.models import SourceClient
from shared.stores.pools import get_pool, pooled_connection

_CLIENT_SOURCE = """
select id, name, email, age, gender_identity, avatar_url, created_at, updated_at
  from public.client_source(%s)
"""


class ProjectBStore:
    """Project B over a direct Postgres connection."""

    def __init__(self, settings: Settings) -> None:
        if settings.project_b_db_url is None:
            raise RuntimeError("PROJECT_B_DB_URL is not set")
        self._settings = settings
        self._conninfo = settings.project_b_db_url.get_secret_value()

    def fetch_client(self, client_id: UUID) -> SourceClient | None:
        """The client's current profile and email, or None when Project B has no such profile."""
        pool = get_pool(
            "project_b",
            self._conninfo,
            self._settings,
            options=f"-c statement_timeout={self._settings.project_b_statement_timeout_ms}",
        )
        with pooled_connection(pool) as conn:
            row = conn.cursor(row_factory=dict_row).execute(_CLIENT_SOURCE, (client_id,)).fetchone()
        return SourceClient.model_validate(row) if row else None
