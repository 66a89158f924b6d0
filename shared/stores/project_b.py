"""Project B: reads a client's profile and email in one query, as the service role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.rows import dict_row

from shared.config import Settings
from shared.models import SourceClient
from shared.stores.pools import get_pool, pooled_connection

# One row always: the client (or nulls when Project B has no such profile), its recorded deletion if any,
# and the time of this read.
_CLIENT_SOURCE = """
select public.profile_deleted_at(%(id)s) as deleted_at, statement_timestamp() as read_at,
       s.id, s.name, s.email, s.age, s.gender_identity, s.avatar_url, s.created_at, s.updated_at
  from (select 1) as one
  left join public.client_source(%(id)s) as s on true
"""


@dataclass(frozen=True)
class SourceState:
    """Project B's client, or None when it has no profile; then `deleted_at` (Project B's clock) is the
    profile's recorded deletion, if any, and `read_at` when Project B answered."""

    client: SourceClient | None
    deleted_at: datetime | None
    read_at: datetime

    @property
    def absent_since(self) -> datetime:
        """Since when the profile is known to be gone: its deletion, else the time of the read."""
        return self.deleted_at or self.read_at


class ProjectBStore:
    """Project B over a direct Postgres connection."""

    def __init__(self, settings: Settings) -> None:
        if settings.project_b_db_url is None:
            raise RuntimeError("PROJECT_B_DB_URL is not set")
        self._settings = settings
        self._conninfo = settings.project_b_db_url.get_secret_value()

    def read_client(self, client_id: UUID) -> SourceState:
        """The client's current profile and email, and the time Project B answered."""
        pool = get_pool("project_b", self._conninfo, self._settings)
        with pooled_connection(pool) as conn:
            row = conn.cursor(row_factory=dict_row).execute(_CLIENT_SOURCE, {"id": client_id}).fetchone()
        deleted_at, read_at = row.pop("deleted_at"), row.pop("read_at")
        return SourceState(SourceClient.model_validate(row) if row["id"] else None, deleted_at, read_at)
