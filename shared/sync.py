"""The sync service: brings Project A's copy of a client to Project B's state. project_b_webhook calls it,
create_session (through the booking service) and sync_client too."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from shared import metrics
from shared.errors import ClientNotFound, InvalidRequest, NotATherapist, UpstreamUnavailable
from shared.logs import log_context, log_event
from shared.models import QueuedSync, SourceClient, Therapist, WebhookEvent
from shared.ports import ClientOutcome, ProjectA, ProjectB

if TYPE_CHECKING:
    from shared.stores.retry_queue import RetryQueue

SYNCED_SOURCES = frozenset({"public.profiles", "auth.users"})
CLIENT_NOT_FOUND = "No client of yours has this id"


@dataclass(frozen=True)
class AppliedOrQueued:
    """A webhook event applied (`applied`), or its client queued for a replay because a project was unavailable."""

    applied: ClientOutcome | None
    queued: bool = False


class SyncService:
    """Keeps Project A's clients consistent with Project B's."""

    def __init__(self, project_a: ProjectA, project_b: ProjectB, retry_queue: RetryQueue | None = None) -> None:
        self.project_a = project_a
        self.project_b = project_b
        self.retry_queue = retry_queue

    def copy_of(self, client_id: UUID) -> SourceClient | None:
        """Project B's client (Project A's SQL maps it), or None when Project B has no such profile."""
        (state,) = self.project_b.read_clients([client_id])
        return state.client

    def sync_client(self, client_id: UUID) -> ClientOutcome:
        """Bring one client of Project A to Project B's current state (insert, update, archive or nothing)."""
        with log_context(client_id=client_id):
            (state,) = self.project_b.read_clients([client_id])
            if state.client is not None:
                (applied,) = self.project_a.upsert_synced_clients([state.client])
            else:
                assert state.absence is not None
                (applied,) = self.project_a.archive_synced_clients([state.absence])
            log_outcomes([applied])
            return applied

    def sync_client_for(self, therapist: Therapist, client_id: UUID) -> ClientOutcome:
        """sync_client for a therapist: sync one client, which becomes theirs if nobody has it; 404 when it is
        another therapist's or in neither project (one answer), 403 for a user who is not a therapist."""
        with log_context(client_id=client_id, therapist_id=therapist.id):
            (state,) = self.project_b.read_clients([client_id])
            answer = self.project_a.sync_client_as(therapist.claims, state)
            if answer.outcome == "moved" and answer.moved_to is not None:  # an old id of a linked client
                (state,) = self.project_b.read_clients([answer.moved_to])
                answer = self.project_a.sync_client_as(therapist.claims, state)
            if answer.outcome == "not_a_therapist":
                raise NotATherapist("Only therapists sync clients")
            if answer.outcome == "not_found" or answer.applied is None:
                log_event("client_not_found")
                raise ClientNotFound(CLIENT_NOT_FOUND)
            log_outcomes([answer.applied])
            return answer.applied

    def apply_webhook_event(self, event: WebhookEvent) -> ClientOutcome:
        """Apply one database webhook event. Its payload is only a hint: the client is re-read from Project B,
        so late, duplicated and reordered deliveries all end in Project B's current state."""
        if event.source not in SYNCED_SOURCES:
            raise InvalidRequest(
                f"Events of {event.source} are not synced; point the webhook at public.profiles or auth.users",
                fields=["schema", "table"],
            )
        log_event("webhook_event_received", event_type=event.type, table=event.source, client_id=event.client_id)
        return self.sync_client(event.client_id)

    def handle_webhook_event(self, event: WebhookEvent) -> AppliedOrQueued:
        """Apply the event now, or queue its client id for a replay when a project stays unavailable.

        The queue holds ids only ({"client_id", "table", "type"}), never the payload: a dashboard-made webhook
        sends whole rows, and the replay re-reads Project B anyway.
        """
        try:
            return AppliedOrQueued(applied=self.apply_webhook_event(event))
        except UpstreamUnavailable:
            if self.retry_queue is None:
                log_event("webhook_event_not_queued", logging.ERROR, client_id=event.client_id)
                raise
            message = QueuedSync(client_id=event.client_id, table=event.source, type=event.type)
            self.retry_queue.send(message.model_dump_json(), source="project_b_webhook", reason="upstream_unavailable")
            log_event("webhook_event_queued", logging.WARNING, client_id=event.client_id, queued=True)
            return AppliedOrQueued(applied=None, queued=True)

    def queue_sync(self, client_id: UUID, *, reason: str) -> bool:
        """Ask the queue's consumer to sync `client_id` from Project B (as a webhook retry does), without writing
        anything now; whether it was queued (not without a queue, nor when SQS refuses: then only logged)."""
        if self.retry_queue is None:
            return False
        message = QueuedSync(client_id=client_id, table="auth.users", type="UPDATE")
        try:
            self.retry_queue.send(message.model_dump_json(), source="sync_client", reason=reason)
        except UpstreamUnavailable:
            log_event("sync_not_queued", logging.WARNING, client_id=client_id, reason=reason)
            return False
        return True


def log_outcomes(outcomes: Sequence[ClientOutcome]) -> None:
    """One line per client written (or not); a conflict also logs its kind and the other client's id, and what was
    bounded on the way in is logged too (log_bounded)."""
    log_bounded(outcomes)
    for result in outcomes:
        metrics.add_outcomes({result.outcome: 1})
        if result.conflict is not None:
            log_event(
                "sync_conflict",
                logging.WARNING,
                client_id=result.client_id,
                conflict=result.conflict,
                other_client_id=result.other_client_id,
            )
        log_event("client_sync_applied", outcome=result.outcome, client_id=result.client_id)


def log_bounded(outcomes: Sequence[ClientOutcome]) -> None:
    """One line per thing bounded on the way into Project A (a version clamped, a name cut, an avatar dropped,
    attributes cut), named for it, with the client's id only."""
    for result in outcomes:
        for notice in result.notices:
            log_event(notice, logging.WARNING, client_id=result.client_id)
