"""The sync service: the one module create_session, project_b_webhook and sync_client call."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from shared.config import Settings, get_settings
from shared.errors import ClientArchived, ClientNotFound, Forbidden, IdempotencyKeyReused
from shared.logs import log_event
from shared.models import CreateSessionRequest, Session, Therapist, client_row_from_source
from shared.retry import call_with_retries

if TYPE_CHECKING:
    from shared.stores.project_a import Booking, ProjectAStore
    from shared.stores.project_b import ProjectBStore


@dataclass(frozen=True)
class CreatedSession:
    """The answer of create_session: the session, whether this call copied the client, and if it was a replay."""

    session: Session
    client_synced: bool
    replayed: bool


class SyncService:
    """Keeps Project A's clients consistent with Project B's and books sessions on top of that."""

    def __init__(self, settings: Settings, project_a: ProjectAStore, project_b: ProjectBStore) -> None:
        self.settings = settings
        self.project_a = project_a
        self.project_b = project_b

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
                self.settings, "project_b", lambda: self.project_b.fetch_client(request.client_id), **ids
            )
            if source is None:
                log_event("client_not_found", **ids)
                raise ClientNotFound("Client not found in either project")
            log_event("syncing_client_from_project_b", **ids)
            new_client = client_row_from_source(source, therapist.id)
            booking = call_with_retries(
                self.settings,
                "project_a",
                lambda: self.project_a.book_session(therapist, request, idempotency_key, new_client),
                **ids,
            )
            client_synced = booking.client_inserted
            log_event("client_synced" if client_synced else "client_already_synced_concurrently", **ids)
        return self._created(booking, client_synced, ids)

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


@lru_cache(maxsize=1)
def default_service() -> SyncService:
    """The service over the configured stores, built once per process on first use."""
    from shared.stores.project_a import ProjectAStore
    from shared.stores.project_b import ProjectBStore

    settings = get_settings()
    return SyncService(settings, ProjectAStore(settings), ProjectBStore(settings))
