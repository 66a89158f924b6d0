"""The sync service: the one module create_session, project_b_webhook and sync_client call."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

from shared.config import Settings, get_settings
from shared.errors import (
    ClientArchived,
    ClientNotFound,
    EmailConflict,
    IdempotencyKeyReused,
    InvalidRequest,
    NotATherapist,
    UpstreamUnavailable,
)
from shared.logs import log_event
from shared.models import (
    CreateSessionRequest,
    QueuedSync,
    Session,
    SyncApplied,
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
        """Book a session, first copying the client from Project B (same id) when Project A lacks it.

        Without an Idempotency-Key, one generated for this request is used by all its attempts, so that a retry
        after a lost reply to a commit finds the session it made instead of making a second one.
        """
        key = idempotency_key or f"auto:{uuid4()}"
        ids = {"client_id": request.client_id, "therapist_id": therapist.id}
        booking = call_with_retries(
            self.settings, "project_a", lambda: self.project_a.book_session(therapist, request, key), **ids
        )
        if booking.outcome == "not_found":
            log_event("client_missing_in_project_a", **ids)
            source = call_with_retries(
                self.settings, "project_b", lambda: self.project_b.read_client(request.client_id), **ids
            ).client
            if source is None:
                log_event("client_not_found", **ids)
                raise ClientNotFound(CLIENT_NOT_FOUND)
            new_client = client_row_from_source(source)
            booking = call_with_retries(
                self.settings,
                "project_a",
                lambda: self.project_a.book_session(therapist, request, key, new_client),
                **ids,
            )
            if booking.copy is not None:
                _log_sync(request.client_id, booking.copy, therapist_id=therapist.id)
        return self._created(booking, replayable=idempotency_key is not None, ids=ids)

    def sync_client(self, client_id: UUID) -> ClientSync:
        """Bring one client of Project A to Project B's current state (insert, update, archive or nothing)."""
        state = call_with_retries(
            self.settings, "project_b", lambda: self.project_b.read_client(client_id), client_id=client_id
        )
        if state.client is None:
            outcome = call_with_retries(
                self.settings,
                "project_a",
                lambda: self.project_a.archive_synced_client(
                    client_id, state.absent_since, deletion_recorded=state.deleted_at is not None
                ),
                client_id=client_id,
            )
            applied = SyncApplied(outcome=outcome)
        else:
            row = client_row_from_source(state.client)
            applied = call_with_retries(
                self.settings, "project_a", lambda: self.project_a.upsert_synced_client(row), client_id=client_id
            )
        _log_sync(client_id, applied)
        return ClientSync(outcome=applied.outcome, client_id=client_id)

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

    def handle_webhook_event(self, event: WebhookEvent) -> WebhookResult:
        """Apply the event now, or queue its client id for a replay when a project stays unavailable.

        The queue holds ids only ({"client_id", "table", "type"}), never the payload: a dashboard-made webhook
        sends whole rows, and the replay re-reads Project B anyway.
        """
        try:
            return WebhookResult(sync=self.apply_webhook_event(event))
        except UpstreamUnavailable:
            if self.retry_queue is None:
                log_event("webhook_event_not_queued", logging.ERROR, client_id=event.client_id)
                raise
            message = QueuedSync(client_id=event.client_id, table=event.source, type=event.type)
            self.retry_queue.send(message.model_dump_json(), source="project_b_webhook", reason="upstream_unavailable")
            log_event("webhook_event_queued", logging.WARNING, client_id=event.client_id, queued=True)
            return WebhookResult(sync=None, queued=True)

    @staticmethod
    def _created(booking: Booking, *, replayable: bool, ids: dict[str, object]) -> CreatedSession:
        outcome = booking.outcome
        if outcome in ("created", "existing") and booking.session is not None:
            session = Session.model_validate(booking.session)
            replayed = replayable and outcome == "existing"
            log_event("session_replayed" if replayed else "session_created", session_id=session.id, **ids)
            client_synced = booking.copy is not None and booking.copy.outcome == "inserted"
            return CreatedSession(session=session, client_synced=client_synced, replayed=replayed)
        log_event("session_refused", outcome=outcome, **ids)
        if outcome == "not_a_therapist":
            raise NotATherapist("Only therapists book sessions")
        if outcome == "archived":
            raise ClientArchived("This client was removed from Project B and is archived; no new sessions")
        if outcome == "idempotency_mismatch":
            raise IdempotencyKeyReused("This Idempotency-Key was already used for a session with other details")
        if outcome == "email_conflict":
            raise EmailConflict(
                "The client's email is already used by another client in Project A, so it cannot be copied; "
                "nothing was written"
            )
        raise ClientNotFound(CLIENT_NOT_FOUND)


CLIENT_NOT_FOUND = "No client of yours has this id"


def _log_sync(client_id: UUID, applied: SyncApplied, **fields: object) -> None:
    if applied.conflict is not None:
        log_event(
            "sync_conflict",
            logging.WARNING,
            client_id=client_id,
            conflict=applied.conflict,
            other_client_id=applied.other_client_id,
            **fields,
        )
    log_event("client_sync_applied", outcome=applied.outcome, client_id=client_id, **fields)


@lru_cache(maxsize=1)
def default_service() -> SyncService:
    """The service over the configured stores, built once per process on first use."""
    from shared.stores.project_a import ProjectAStore
    from shared.stores.project_b import ProjectBStore

    settings = get_settings()
    retry_queue = None
    if settings.sync_retry_queue_url:
        from shared.stores.retry_queue import RetryQueue

        retry_queue = RetryQueue(settings.sync_retry_queue_url, settings)
    return SyncService(settings, ProjectAStore(settings), ProjectBStore(settings), retry_queue)
