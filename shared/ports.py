"""What the services need of Project A and Project B, and the neutral types they trade in.

Each backend (shared/stores/postgres_*.py) implements these Protocols over its own driver, maps its own
errors to shared.errors (TransientError, ...) and retries nothing itself: shared/retry.py does, for all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from shared.models import ClientRow, SourceClient

SyncOutcome = Literal["inserted", "updated", "unchanged", "archived", "conflict"]
ConflictKind = Literal["email", "id"]
BookingOutcome = Literal[
    "created",  # a new session
    "existing",  # the session this idempotency key made before
    "not_found",  # no client of the therapist's has this id (absent, or another therapist's)
    "archived",
    "idempotency_mismatch",
    "not_a_therapist",
    "email_conflict",  # the copy of the client could not be written: another client has its email
]


@dataclass(frozen=True)
class SyncApplied:
    """What writing one client's Project B state into Project A did. A conflict writes nothing: `email` when
    another client (`other_client_id`) has the email, `id` when Project A's own client has the id."""

    client_id: UUID
    outcome: SyncOutcome
    conflict: ConflictKind | None = None
    other_client_id: UUID | None = None


@dataclass(frozen=True)
class Absence:
    """A client Project B no longer has: its recorded deletion, or else when a read found no profile."""

    client_id: UUID
    deleted_at: datetime | None
    read_at: datetime


@dataclass(frozen=True)
class SourceState:
    """Project B's answer for one id: the client, or None and since when it is absent."""

    client_id: UUID
    client: SourceClient | None
    absence: Absence | None


@dataclass(frozen=True)
class BookingRequest:
    """A booking as the therapist of `claims` (the verified token's), whatever carried it."""

    claims: dict[str, Any]
    client_id: UUID
    starts_at: datetime
    duration_minutes: int
    notes: str | None
    idempotency_key: str


@dataclass(frozen=True)
class Booking:
    """What booking answered: the session when created or replayed, and what writing the copy did."""

    outcome: BookingOutcome
    session: dict[str, Any] | None
    copy: SyncApplied | None


@dataclass(frozen=True)
class ClientPage:
    """A page of Project B's clients, as the JSON text of [{id, profile, updated_at}, ...] that Project A's
    SQL takes as it is (never parsed on the way), the last id in it and how many."""

    clients_json: str
    last_id: UUID | None
    count: int


class ProjectA(Protocol):
    """Project A: bookings as the therapist, and writes of synced clients as the service role."""

    def book_session(self, request: BookingRequest, copy: ClientRow | None = None) -> Booking:
        """One round trip: check the therapist, write `copy` of the client if given, book."""
        ...

    def upsert_synced_clients(self, clients: Sequence[ClientRow]) -> list[SyncApplied]:
        """Write Project B's states; one answer per distinct id, in id order."""
        ...

    def archive_synced_clients(self, absences: Sequence[Absence]) -> list[SyncApplied]:
        """Archive clients Project B no longer has; one answer (archived or unchanged) per id."""
        ...


class ProjectB(Protocol):
    """Project B: clients (profile and email) read as the service role."""

    def read_clients(self, client_ids: Sequence[UUID]) -> list[SourceState]:
        """The current state of each id, in the order asked, in one query."""
        ...

    def read_client_page(self, after: UUID | None, limit: int, until: UUID | None = None) -> ClientPage:
        """Up to `limit` clients in id order after `after` (exclusive) and up to `until` (inclusive)."""
        ...
