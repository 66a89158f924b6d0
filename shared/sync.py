"""The sync service: the one module create_session, project_b_webhook and sync_client call."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from uuid import UUID

from shared.config import Settings, get_settings
from shared.errors import (
    ClientArchived,
    ClientNotFound,
    EmailConflict,
    Forbidden,
    IdempotencyKeyReused,
    InvalidRequest,
    UpstreamUnavailable,
)
from shared.logs import log_event
from shared.models import (
    CreateSessionRequest,
    Session,
    SyncOutcome,
    Therapist,
    WebhookEvent,
    client_row_from_source,
)
from shared.retry import call_with_retries

if TYPE_CHECKING:
    from shared.stores.project_a import Booking, ProjectAStore
    from shared.stores.project_b import ProjectBStore
    from shared.stores.retry_queue import RetryQueue

SYNCED_SOURCES = frozenset({"public.profiles", "auth.users"})


@dataclass(frozen=True)
class CreatedSession:
    """The answer of create_session: the session, whether this call copied the client, and if it was a replay."""

    session: Session
    client_synced: bool
    replayed: bool


@dataclass(frozen=True)
class ClientSync:
    """What syncing one client did in Project A."""

    outcome: SyncOutcome
    client_id: UUID


@dataclass(frozen=True)
class WebhookResult:
    """A webhook event applied (`sync`), or queued for a replay because a project was unavailable."""

    sync: ClientSync | None
    queued: bool = False


class SyncService:
    """Keeps Project A's clients consistent with Project B's and books sessions on top of that."""

    def __init__(
        self,
        settings: Settings,
        project_a: ProjectAStore,
        project_b: ProjectBStore,
        retry_queue: RetryQueue | None = None,
    ) -> None:
        self.settings = settings
        self.project_a = project_a
        self.project_b = project_b
        self.retry_queue = retry_queue

    def create_session(
        self, therapist: Therapist, request: CreateSessionRequest, idempotency_key: str | None
    ) -> CreatedSession:
        """Book a session, first copying the client from Project B (same id) when Project A lacks it."""
        ids = {"client_id": request.client_id, "therapist_id": therapist.id}
        booking = call_with_retries(
            self.settings,
            "project_a",
            lambda: self.project_a.book_session(therapist, request, idempotency_key),
            **ids,
        )
        client_synced = False
        if booking.outcome == "missing":
            log_event("client_missing_in_project_a", **ids)
            source = call_with_retries(
                self.settings, "project_b", lambda: self.project_b.read_client(request.client_id), **ids
            ).client
            if source is None:
                log_event("client_not_found", **ids)
                raise ClientNotFound("Client not found in either project")
            log_event("syncing_client_from_project_b", **ids)
            new_client = client_row_from_source(source)
            try:
                booking = call_with_retries(
                    self.settings,
                    "project_a",
                    lambda: self.project_a.book_session(therapist, request, idempotency_key, new_client),
                    **ids,
                )
            except EmailConflict as exc:
                _log_conflict(request.client_id, exc, therapist_id=therapist.id)
                raise
            client_synced = booking.client_inserted
            log_event("client_synced" if client_synced else "client_already_synced_concurrently", **ids)
        return self._created(booking, client_synced, ids)

    def sync_client(self, client_id: UUID) -> ClientSync:
        """Bring one client of Project A to Project B's current state (insert, update, archive or nothing)."""
        state = call_with_retries(
            self.settings, "project_b", lambda: self.project_b.read_client(client_id), client_id=client_id
        )
        if state.client is None:
            outcome = call_with_retries(
                self.settings,
                "project_a",
                lambda: self.project_a.archive_synced_client(client_id, state.absent_since),
                client_id=client_id,
            )
        else:
            row = client_row_from_source(state.client)
            try:
                outcome = call_with_retries(
                    self.settings, "project_a", lambda: self.project_a.upsert_synced_client(row), client_id=client_id
                )
            except EmailConflict as exc:
                _log_conflict(client_id, exc)
                outcome = "conflict"
        log_event("client_sync_applied", outcome=outcome, client_id=client_id)
        return ClientSync(outcome=outcome, client_id=client_id)

    def apply_webhook_event(self, event: WebhookEvent) -> ClientSync:
        """Apply one database webhook event. Its payload is only a hint: the client is re-read from Project B,
        so late, duplicated and reordered deliveries all end in Project B's current state."""
        if event.source not in SYNCED_SOURCES:
            raise InvalidRequest(
                f"Events of {event.source} are not synced; point the webhook at public.profiles or auth.users",
                fields=["schema", "table"],
            )
        log_event("webhook_event_received", event_type=event.type, table=event.source, client_id=event.client_id)
        return self.sync_client(event.client_id)

    def handle_webhook_event(self, event: WebhookEvent, raw_body: str) -> WebhookResult:
        """Apply the event now, or keep it whole on the retry queue when a project stays unavailable."""
        try:
            return WebhookResult(sync=self.apply_webhook_event(event))
        except UpstreamUnavailable:
            if self.retry_queue is None:
                log_event("webhook_event_not_queued", logging.ERROR, client_id=event.client_id)
                raise
            self.retry_queue.send(raw_body, source="project_b_webhook", reason="upstream_unavailable")
            log_event("webhook_event_queued", logging.WARNING, client_id=event.client_id, queued=True)
            return WebhookResult(sync=None, queued=True)

    @staticmethod
    def _created(booking: Booking, client_synced: bool, ids: dict[str, object]) -> CreatedSession:
        outcome = booking.outcome
        if outcome in ("created", "existing") and booking.session is not None:
            session = Session.model_validate(booking.session)
            log_event("session_created" if outcome == "created" else "session_replayed", session_id=session.id, **ids)
            return CreatedSession(session=session, client_synced=client_synced, replayed=outcome == "existing")
        log_event("session_refused", outcome=outcome, **ids)
        if outcome == "forbidden":
            raise Forbidden("This client belongs to another therapist")
        if outcome == "archived":
            raise ClientArchived("This client was removed from Project B and is archived; no new sessions")
        if outcome == "idempotency_mismatch":
            raise IdempotencyKeyReused("This Idempotency-Key was already used for a session with other details")
        raise ClientNotFound("Client not found in either project")


def _log_conflict(client_id: UUID, exc: EmailConflict, **fields: object) -> None:
    log_event(
        "email_conflict",
        logging.WARNING,
        client_id=client_id,
        other_client_id=exc.details.get("other_client_id"),
        **fields,
    )


@lru_cache(maxsize=1)
def default_service() -> SyncService:
    """The service over the configured stores, built once per process on first use."""
    from shared.stores.project_a import ProjectAStore
    from shared.stores.project_b import ProjectBStore

    settings = get_settings()
    retry_queue = None
    if settings.sync_retry_queue_url:
        from shared.stores.retry_queue import RetryQueue

        retry_queue = RetryQueue(settings.sync_retry_queue_url)
    return SyncService(settings, ProjectAStore(settings), ProjectBStore(settings), retry_queue)
