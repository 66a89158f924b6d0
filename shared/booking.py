"""The booking service: create_session's one call. Books as the therapist, copying the client from Project B
(through the sync service) when Project A lacks it."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

from shared.errors import ClientArchived, ClientNotFound, EmailConflict, IdempotencyKeyReused, NotATherapist
from shared.logs import log_context, log_event
from shared.models import CreateSessionRequest, Session, Therapist
from shared.ports import BookingAnswer, BookingRequest, ProjectA
from shared.sync import CLIENT_NOT_FOUND, SyncService, log_outcomes


@dataclass(frozen=True)
class BookedSession:
    """A session booked, now or by an earlier call with the same Idempotency-Key (`replayed`), and whether this
    call copied the client into Project A: create_session's answer."""

    session: Session
    client_synced: bool
    replayed: bool


class BookingService:
    """Books sessions for therapists."""

    def __init__(self, project_a: ProjectA, sync: SyncService) -> None:
        self.project_a = project_a
        self.sync = sync

    def create_session(
        self, therapist: Therapist, request: CreateSessionRequest, idempotency_key: str | None
    ) -> BookedSession:
        """Book a session, first copying the client from Project B (same id) when Project A lacks it.

        One round trip to Project A when the client is there. Every 404 costs the same: one round trip to each
        project, whether the id is nobody's or held elsewhere in Project A, so that its time does not tell
        which. Without an Idempotency-Key, one generated for this request is used by all its attempts, so that
        a retry after a lost reply to a commit finds the session it made instead of making a second one.
        """
        booking_request = BookingRequest(
            claims=therapist.claims,
            client_id=request.client_id,
            starts_at=request.starts_at,
            duration_minutes=request.duration_minutes,
            notes=request.notes,
            idempotency_key=idempotency_key or f"auto:{uuid4()}",
            access_token=therapist.access_token.get_secret_value() if therapist.access_token else None,
        )
        with log_context(client_id=request.client_id, therapist_id=therapist.id):
            booking = self.project_a.book_session(booking_request)
            if booking.outcome == "not_found":
                # Project B is read even when Project A holds the id elsewhere and no copy could help.
                copy = self.sync.copy_of(request.client_id)
                if copy is None or booking.held_elsewhere:
                    log_event("client_not_found")
                    raise ClientNotFound(CLIENT_NOT_FOUND)
                log_event("client_missing_in_project_a")
                booking = self.project_a.book_session(booking_request, copy)
                if booking.copy is not None:
                    log_outcomes([booking.copy])
            return _booked(booking, replayable=idempotency_key is not None)


def _booked(booking: BookingAnswer, *, replayable: bool) -> BookedSession:
    outcome = booking.outcome
    if outcome in ("created", "existing") and booking.session is not None:
        session = Session.model_validate(booking.session)
        replayed = replayable and outcome == "existing"
        log_event("session_replayed" if replayed else "session_created", session_id=session.id)
        client_synced = booking.copy is not None and booking.copy.outcome == "inserted"
        return BookedSession(session=session, client_synced=client_synced, replayed=replayed)
    log_event("session_refused", outcome=outcome)
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
