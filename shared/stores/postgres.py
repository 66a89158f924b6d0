"""The Postgres backend: Project A and Project B over direct connections (psycopg), as the service role.

Every statement calls one SQL function of the migrations, the same ones PostgREST's rpc reaches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.config import Settings
from shared.errors import ConcurrentSyncRace
from shared.models import ClientRow, SourceClient
from shared.ports import Absence, Booking, BookingRequest, ClientPage, SourceState, SyncApplied
from shared.retry import retried
from shared.stores.pools import Project, get_pool, pooled_connection

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

T = TypeVar("T")

EMAIL_UNIQUE_CONSTRAINT = "clients_email_unique"

_BOOK_SESSION_AS = "select public.book_session_as(%s, %s, %s, %s, %s, %s, %s)"
_UPSERT_SYNCED_CLIENTS = "select client_id, outcome, conflict, other_client_id from public.upsert_synced_clients(%s)"
_ARCHIVE_SYNCED_CLIENTS = "select client_id, outcome from public.archive_synced_clients(%s)"
_CLIENT_STATES = "select id, profile, updated_at, deleted_at, read_at from public.client_states(%s)"
_CLIENT_PAGE = "select clients::text, last_id, count from public.client_page(%s, %s, %s)"


class _PostgresProject:
    project: Project

    def __init__(self, settings: Settings, url: str | None) -> None:
        if url is None:
            raise RuntimeError(f"{self.project.upper()}_DB_URL is not set")
        self.settings = settings
        self._conninfo = url

    def _pool(self) -> ConnectionPool:
        return get_pool(self.project, self._conninfo, self.settings)


class PostgresProjectA(_PostgresProject):
    """Project A (shared.ports.ProjectA) over Postgres."""

    project: Project = "project_a"

    def __init__(self, settings: Settings) -> None:
        url = settings.project_a_db_url
        super().__init__(settings, url.get_secret_value() if url else None)

    @retried
    def book_session(self, request: BookingRequest, copy: ClientRow | None = None) -> Booking:
        params = (
            Jsonb(request.claims),
            request.client_id,
            request.starts_at,
            request.duration_minutes,
            request.notes,
            request.idempotency_key,
            Jsonb(copy.model_dump(mode="json")) if copy is not None else None,
        )
        with pooled_connection(self._pool()) as conn:
            answer = _race_is_retried(lambda: conn.execute(_BOOK_SESSION_AS, params).fetchone())
        result = answer[0] if answer else {}
        written = result.get("client")
        return Booking(
            outcome=result["outcome"],
            session=result.get("session"),
            copy=_sync_applied(written) if written else None,
        )

    @retried
    def upsert_synced_clients(self, clients: Sequence[ClientRow]) -> list[SyncApplied]:
        rows = Jsonb([client.model_dump(mode="json") for client in clients])
        with pooled_connection(self._pool()) as conn:
            cursor = conn.cursor(row_factory=dict_row)
            answers = _race_is_retried(lambda: cursor.execute(_UPSERT_SYNCED_CLIENTS, (rows,)).fetchall())
        return [_sync_applied(answer) for answer in answers]

    @retried
    def archive_synced_clients(self, absences: Sequence[Absence]) -> list[SyncApplied]:
        rows = Jsonb([_absence_json(absence) for absence in absences])
        with pooled_connection(self._pool()) as conn:
            answers = conn.execute(_ARCHIVE_SYNCED_CLIENTS, (rows,)).fetchall()
        return [SyncApplied(client_id=client_id, outcome=outcome) for client_id, outcome in answers]


class PostgresProjectB(_PostgresProject):
    """Project B (shared.ports.ProjectB) over Postgres."""

    project: Project = "project_b"

    def __init__(self, settings: Settings) -> None:
        url = settings.project_b_db_url
        super().__init__(settings, url.get_secret_value() if url else None)

    @retried
    def read_clients(self, client_ids: Sequence[UUID]) -> list[SourceState]:
        with pooled_connection(self._pool()) as conn:
            rows = conn.cursor(row_factory=dict_row).execute(_CLIENT_STATES, (list(client_ids),)).fetchall()
        return [source_state(row) for row in rows]

    @retried
    def read_client_page(self, after: UUID | None, limit: int, until: UUID | None = None) -> ClientPage:
        with pooled_connection(self._pool()) as conn:
            clients, last_id, count = conn.execute(_CLIENT_PAGE, (after, limit, until)).fetchone() or ("[]", None, 0)
        return ClientPage(clients_json=clients, last_id=last_id, count=count)


def source_client(row: Mapping[str, Any]) -> SourceClient:
    """A client of Project B from a row of client_states or client_page (id, profile, updated_at)."""
    fields = dict(row["profile"])
    return SourceClient(
        id=row["id"],
        name=fields.pop("name", None),
        email=fields.pop("email", None),
        attributes=fields,
        updated_at=row["updated_at"],
    )


def source_state(row: Mapping[str, Any]) -> SourceState:
    """One id's state from a row of client_states (also what the supabase backend gets, as JSON)."""
    if row["profile"] is not None:
        return SourceState(client_id=row["id"], client=source_client(row), absence=None)
    absence = Absence(client_id=row["id"], deleted_at=row["deleted_at"], read_at=row["read_at"])
    return SourceState(client_id=row["id"], client=None, absence=absence)


def _race_is_retried(statement: Callable[[], T]) -> T:
    """An email taken by a concurrent insert after the upsert's check: retried, and then seen as a conflict."""
    try:
        return statement()
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == EMAIL_UNIQUE_CONSTRAINT:
            raise ConcurrentSyncRace(EMAIL_UNIQUE_CONSTRAINT) from exc
        raise


def _absence_json(absence: Absence) -> dict[str, str]:
    if absence.deleted_at is not None:
        return {"id": str(absence.client_id), "deleted_at": absence.deleted_at.isoformat()}
    return {"id": str(absence.client_id), "absent_since": absence.read_at.isoformat()}


def _sync_applied(row: Mapping[str, Any]) -> SyncApplied:
    other = row.get("other_client_id")
    return SyncApplied(
        client_id=UUID(str(row["client_id"])),
        outcome=row["outcome"],
        conflict=row.get("conflict"),
        other_client_id=UUID(str(other)) if other else None,
    )
