"""The Postgres backend: Project A and Project B over direct connections (psycopg), as the functions' login.

Every statement calls one SQL function of db/<project>/supabase/schemas, the same ones PostgREST's rpc reaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from shared.config import Project, Settings
from shared.models import SourceClient
from shared.ports import (
    Absence,
    BookingAnswer,
    BookingRequest,
    ChangePage,
    ClientOutcome,
    ClientPage,
    Conflict,
    InviteCandidate,
    InviteOutcome,
    InviteTarget,
    LinkSuggestion,
    OutcomeCounts,
    RunMark,
    SourceState,
    TherapistSyncAnswer,
    Watermark,
)
from shared.retry import retried
from shared.stores.answers import (
    client_outcome,
    invite_candidate,
    invite_target,
    link_answer,
    link_suggestions,
    outcome_counts,
    source_state,
    therapist_sync_answer,
)
from shared.stores.pools import get_pool, pooled_connection

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool


_BOOK_SESSION_AS = "select public.book_session_as(%s, %s, %s, %s, %s, %s, %s)"
_UPSERT_SYNCED_CLIENTS = (
    "select client_id, outcome, conflict, other_client_id, notices from public.upsert_synced_clients(%s)"
)
_ARCHIVE_SYNCED_CLIENTS = "select client_id, outcome from public.archive_synced_clients(%s)"
_CLIENT_STATES = "select id, profile, updated_at, deleted_at, read_at, version_clamped from public.client_states(%s)"
_CLIENT_PAGE = "select clients::text, last_id, count from public.client_page(%s, %s, %s)"
_CLIENT_CHANGES = (
    "select clients::text, absences::text, last_version, last_id, count from public.client_changes(%s, %s, %s)"
)
_APPLY_SYNC_PAGE = "select public.apply_sync_page(%s::jsonb, %s::jsonb, %s, %s, %s, %s)"
_APPLY_SYNC_PAGE_DRY_RUN = "select public.apply_sync_page_dry_run(%s::jsonb, %s::jsonb, %s, %s, %s, %s)"
_SYNC_WATERMARK = "select watermark, watermark_id from public.sync_watermark(%s)"
_SYNC_CONFLICTS = (
    "select client_id, kind, other_client_id, first_seen, last_seen, resolved_at from public.sync_conflicts(%s, %s)"
)
_SYNCED_CLIENT_IDS = "select * from public.synced_client_ids(%s, %s)"
_OPEN_CONFLICT_IDS = "select * from public.open_conflict_ids(%s, %s)"
_SYNC_CLIENT_AS = "select public.sync_client_as(%s, %s, %s, %s)"
_LINK_SUGGESTIONS_FOR = "select public.link_suggestions_for(%s, %s)"
_REJECT_LINK_AS = "select public.reject_link_as(%s, %s, %s)"
_LINK_CLIENT_AS = "select public.link_client_as(%s, %s, %s, %s, %s)"
_EMAIL_CONFIRMED = "select public.email_confirmed(%s, %s)"
_CLIENT_TO_INVITE_AS = "select public.client_to_invite_as(%s, %s)"
_SYNC_STATUS = "select public.sync_status()"
_RECORD_INVITE_AS = "select public.record_invite_as(%s, %s, %s)"
_INVITE_TARGET = "select public.invite_target(%s, %s)"
_CREATE_INVITED_PROFILE = (
    "select id, profile, updated_at, deleted_at, read_at, version_clamped from public.create_invited_profile(%s, %s)"
)
RECONCILE = "reconcile"


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
    def book_session(self, request: BookingRequest, copy: SourceClient | None = None) -> BookingAnswer:
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
            answer = conn.execute(_BOOK_SESSION_AS, params).fetchone()
        result = answer[0] if answer else {}
        written = result.get("client")
        return BookingAnswer(
            outcome=result["outcome"],
            session=result.get("session"),
            copy=client_outcome(written) if written else None,
            held_elsewhere=result.get("held_elsewhere", False),
        )

    @retried
    def upsert_synced_clients(self, clients: Sequence[SourceClient]) -> list[ClientOutcome]:
        rows = Jsonb([client.model_dump(mode="json") for client in clients])
        with pooled_connection(self._pool()) as conn:
            cursor = conn.cursor(row_factory=dict_row)
            answers = cursor.execute(_UPSERT_SYNCED_CLIENTS, (rows,)).fetchall()
        return [client_outcome(answer) for answer in answers]

    @retried
    def archive_synced_clients(self, absences: Sequence[Absence]) -> list[ClientOutcome]:
        rows = Jsonb([absence.as_json() for absence in absences])
        with pooled_connection(self._pool()) as conn:
            answers = conn.execute(_ARCHIVE_SYNCED_CLIENTS, (rows,)).fetchall()
        return [ClientOutcome(client_id=client_id, outcome=outcome) for client_id, outcome in answers]

    @retried
    def apply_sync_page(
        self,
        clients_json: str,
        absences_json: str,
        watermark: Watermark | None = None,
        *,
        dry_run: bool = False,
        run: RunMark | None = None,
    ) -> OutcomeCounts:
        params = (
            clients_json,
            absences_json,
            RECONCILE if watermark else None,
            watermark.version if watermark else None,
            watermark.client_id if watermark else None,
            Jsonb(run.as_json()) if run else None,
        )
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_APPLY_SYNC_PAGE_DRY_RUN if dry_run else _APPLY_SYNC_PAGE, params).fetchone()
        return outcome_counts(row[0] if row else {})

    @retried
    def reconcile_watermark(self) -> Watermark | None:
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_SYNC_WATERMARK, (RECONCILE,)).fetchone()
        return Watermark(version=row[0], client_id=row[1]) if row else None

    @retried
    def conflicts(self, *, include_resolved: bool = False, limit: int = 1000) -> list[Conflict]:
        with pooled_connection(self._pool()) as conn:
            rows = conn.cursor(row_factory=dict_row).execute(_SYNC_CONFLICTS, (include_resolved, limit)).fetchall()
        return [Conflict(**row) for row in rows]

    @retried
    def sync_client_as(self, claims: dict[str, Any], state: SourceState) -> TherapistSyncAnswer:
        client = state.client.model_dump(mode="json") if state.client is not None else None
        absence = state.absence.as_json() if state.absence is not None else None
        params = (
            Jsonb(claims),
            state.client_id,
            Jsonb(client) if client else None,
            Jsonb(absence) if absence else None,
        )
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_SYNC_CLIENT_AS, params).fetchone()
        return therapist_sync_answer(row[0] if row else {"outcome": "not_found"})

    @retried
    def link_suggestions(self, claims: dict[str, Any] | None, limit: int = 1000) -> list[LinkSuggestion] | None:
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_LINK_SUGGESTIONS_FOR, (Jsonb(claims) if claims else None, limit)).fetchone()
        return link_suggestions(row[0] if row else {"outcome": "ok", "suggestions": []})

    @retried
    def link_client(
        self,
        claims: dict[str, Any] | None,
        client_id: UUID,
        project_b_user_id: UUID,
        *,
        email_confirmed: bool,
        state: SourceState,
    ) -> tuple[str, UUID | None]:
        client = Jsonb(state.client.model_dump(mode="json")) if state.client is not None else None
        params = (Jsonb(claims) if claims else None, client_id, project_b_user_id, email_confirmed, client)
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_LINK_CLIENT_AS, params).fetchone()
        return link_answer(row[0] if row else {"outcome": "not_found"})

    @retried
    def reject_link(self, claims: dict[str, Any] | None, client_id: UUID, project_b_user_id: UUID) -> str:
        params = (Jsonb(claims) if claims else None, client_id, project_b_user_id)
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_REJECT_LINK_AS, params).fetchone()
        return str(row[0]["outcome"]) if row else "not_found"

    @retried
    def sync_status(self) -> dict[str, Any]:
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_SYNC_STATUS).fetchone()
        return dict(row[0]) if row else {}

    @retried
    def client_to_invite(self, claims: dict[str, Any] | None, client_id: UUID) -> InviteCandidate:
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_CLIENT_TO_INVITE_AS, (Jsonb(claims) if claims else None, client_id)).fetchone()
        return invite_candidate(row[0] if row else {"outcome": "not_found"})

    @retried
    def record_invite(self, claims: dict[str, Any] | None, client_id: UUID, state: SourceState) -> InviteOutcome:
        client = Jsonb(state.client.model_dump(mode="json")) if state.client is not None else None
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_RECORD_INVITE_AS, (Jsonb(claims) if claims else None, client_id, client)).fetchone()
        return invite_candidate(row[0] if row else {"outcome": "not_found"}).outcome

    @retried
    def synced_client_ids(self, after: UUID | None, limit: int) -> list[UUID]:
        with pooled_connection(self._pool()) as conn:
            return [row[0] for row in conn.execute(_SYNCED_CLIENT_IDS, (after, limit))]

    @retried
    def open_conflict_ids(self, after: UUID | None, limit: int) -> list[UUID]:
        with pooled_connection(self._pool()) as conn:
            return [row[0] for row in conn.execute(_OPEN_CONFLICT_IDS, (after, limit))]


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
    def email_confirmed(self, user_id: UUID, email: str) -> bool:
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_EMAIL_CONFIRMED, (user_id, email)).fetchone()
        return bool(row and row[0])

    @retried
    def invite_target(self, client_id: UUID, email: str) -> InviteTarget:
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_INVITE_TARGET, (client_id, email)).fetchone()
        return invite_target(row[0] if row else {"user": "absent"})

    @retried
    def create_invited_profile(self, client_id: UUID, full_name: str) -> SourceState:
        with pooled_connection(self._pool()) as conn:
            row = conn.cursor(row_factory=dict_row).execute(_CREATE_INVITED_PROFILE, (client_id, full_name)).fetchone()
        if row is None:
            raise RuntimeError("create_invited_profile answered no row")
        return source_state(row)

    @retried
    def read_client_page(self, after: UUID | None, limit: int, until: UUID | None = None) -> ClientPage:
        with pooled_connection(self._pool()) as conn:
            clients, last_id, count = conn.execute(_CLIENT_PAGE, (after, limit, until)).fetchone() or ("[]", None, 0)
        return ClientPage(clients_json=clients, last_id=last_id, count=count)

    @retried
    def read_changes(self, since: Watermark, limit: int) -> ChangePage:
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_CLIENT_CHANGES, (since.version, since.client_id, limit)).fetchone()
        clients, absences, last_version, last_id, count = row or ("[]", "[]", None, None, 0)
        last = Watermark(version=last_version, client_id=last_id) if last_id is not None else None
        return ChangePage(clients_json=clients, absences_json=absences, last=last, count=count)
