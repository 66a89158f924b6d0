"""Project A: books sessions as the therapist and writes synced clients as the service role."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.config import Settings
from shared.errors import ConcurrentSyncRace
from shared.models import ClientRow, CreateSessionRequest, SyncApplied, SyncOutcome, Therapist
from shared.stores.pools import get_pool, pooled_connection

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

T = TypeVar("T")

EMAIL_UNIQUE_CONSTRAINT = "clients_email_unique"

# The SQL is in migrations/project_a/0003_access_control.sql; each is one statement and one round trip.
_BOOK_SESSION_AS = "select public.book_session_as(%s, %s, %s, %s, %s, %s, %s)"
_UPSERT_SYNCED_CLIENTS = "select client_id, outcome, conflict, other_client_id from public.upsert_synced_clients(%s)"
_ARCHIVE_SYNCED_CLIENTS = "select client_id, outcome from public.archive_synced_clients(%s)"


@dataclass(frozen=True)
class Booking:
    """What public.book_session_as answered, and what writing the copy of the client did (when one was given)."""

    outcome: str
    session: dict[str, Any] | None
    copy: SyncApplied | None


class ProjectAStore:
    """Project A over a direct Postgres connection."""

    def __init__(self, settings: Settings) -> None:
        if settings.project_a_db_url is None:
            raise RuntimeError("PROJECT_A_DB_URL is not set")
        self._settings = settings
        self._conninfo = settings.project_a_db_url.get_secret_value()

    def _pool(self) -> ConnectionPool:
        return get_pool("project_a", self._conninfo, self._settings)

    def book_session(
        self,
        therapist: Therapist,
        request: CreateSessionRequest,
        idempotency_key: str | None,
        new_client: ClientRow | None = None,
    ) -> Booking:
        """One statement, one round trip: check the therapist, write the copy of the client if given, book.

        An unclaimed client (synced before anyone booked it) becomes this therapist's in public.create_session.
        """
        params = (
            Jsonb(therapist.claims),
            request.client_id,
            request.starts_at,
            request.duration_minutes,
            request.notes,
            idempotency_key,
            Jsonb(_client_json(new_client)) if new_client is not None else None,
        )
        with pooled_connection(self._pool()) as conn:
            result = _race_is_retried(lambda: conn.execute(_BOOK_SESSION_AS, params).fetchone()[0])
        copy = result.get("client")
        return Booking(
            outcome=result["outcome"],
            session=result.get("session"),
            copy=_sync_applied(copy) if copy else None,
        )

    def upsert_synced_client(self, client: ClientRow) -> SyncApplied:
        """Write Project B's state of a client: inserted, updated, unchanged (same or older state) or conflict."""
        with pooled_connection(self._pool()) as conn:
            row = _race_is_retried(
                lambda: (
                    conn.cursor(row_factory=dict_row)
                    .execute(_UPSERT_SYNCED_CLIENTS, (Jsonb([_client_json(client)]),))
                    .fetchone()
                )
            )
        return _sync_applied(row)

    def archive_synced_client(
        self, client_id: UUID, absent_since: datetime, *, deletion_recorded: bool = False
    ) -> SyncOutcome:
        """Archive a client Project B no longer has: 'archived', or 'unchanged' when there is nothing to do.

        `absent_since` is the profile's recorded deletion (`deletion_recorded`), which becomes the stored
        version, or the time of a read that found no profile.
        """
        field = "deleted_at" if deletion_recorded else "absent_since"
        absences = Jsonb([{"id": str(client_id), field: absent_since.isoformat()}])
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_ARCHIVE_SYNCED_CLIENTS, (absences,)).fetchone()
        return "archived" if row[1] == "archived" else "unchanged"


def _race_is_retried(statement: Callable[[], T]) -> T:
    """An email taken by a concurrent insert after the upsert's check: retried, and then seen as a conflict."""
    try:
        return statement()
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == EMAIL_UNIQUE_CONSTRAINT:
            raise ConcurrentSyncRace(EMAIL_UNIQUE_CONSTRAINT) from exc
        raise


def _client_json(client: ClientRow) -> dict[str, Any]:
    return client.model_dump(mode="json")


def _sync_applied(row: Mapping[str, Any]) -> SyncApplied:
    other = row.get("other_client_id")
    return SyncApplied(
        outcome=row["outcome"],
        conflict=row.get("conflict"),
        other_client_id=UUID(str(other)) if other else None,
    )
