"""What the services need of Project A and Project B, and the neutral types they trade in.

The backend (shared/stores/postgres.py) implements these Protocols over its driver, maps the driver's errors
to shared.errors (TransientError, ...) and retries nothing itself: shared/retry.py does.

The results, by what they describe: one client written (ClientOutcome), those of a page or a run counted
(OutcomeCounts), and Project A's answer to a call made as a therapist, refusals included (BookingAnswer,
TherapistSyncAnswer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from shared.models import SourceClient

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
class ClientOutcome:
    """What writing one client's Project B state into Project A did. A conflict writes nothing: `email` when
    another client (`other_client_id`) has the email, `id` when Project A's own client has the id."""

    client_id: UUID
    outcome: SyncOutcome
    conflict: ConflictKind | None = None
    other_client_id: UUID | None = None
    # What was bounded on the way in (each logged under its name): version_clamped, full_name_cut,
    # avatar_url_dropped, source_attributes_cut.
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Absence:
    """A client Project B no longer has: its recorded deletion, or else when a read found no profile."""

    client_id: UUID
    deleted_at: datetime | None
    read_at: datetime

    def as_json(self) -> dict[str, str]:
        """What Project A's archive takes: the recorded deletion (which becomes the stored version), or else
        the time of the read."""
        if self.deleted_at is not None:
            return {"id": str(self.client_id), "deleted_at": self.deleted_at.isoformat()}
        return {"id": str(self.client_id), "absent_since": self.read_at.isoformat()}


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
    # The therapist's bearer token itself, for a backend that books with it (PostgREST's rpc): never logged.
    access_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BookingAnswer:
    """Project A's answer to book_session: its outcome, the session when created or replayed, what writing the
    copy of the client did, when one was written, and for a not_found whether Project A holds the id for another
    therapist (or as its own client), so that no copy from Project B could make it the caller's."""

    outcome: BookingOutcome
    session: dict[str, Any] | None
    copy: ClientOutcome | None
    held_elsewhere: bool = False


@dataclass(frozen=True)
class RunMark:
    """What a page of a backfill or reconcile is to its run, recorded with it (the status): the kind, whether it
    starts a new run (in `parts` parts: a sharded backfill's ranges), and whether a part ends with it."""

    kind: Literal["backfill", "reconcile"]
    new_run: bool
    finished: bool
    parts: int = 1

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "new_run": self.new_run, "finished": self.finished, "parts": self.parts}

    @property
    def worth_a_call(self) -> bool:
        """Whether the mark must be recorded even for a page with nothing to write: it starts or ends something."""
        return self.new_run or self.finished


@dataclass(frozen=True)
class ClientPage:
    """A page of Project B's clients, as the JSON text of [{id, profile, updated_at}, ...] that Project A's
    SQL takes as it is (never parsed on the way), the last id in it and how many."""

    clients_json: str
    last_id: UUID | None
    count: int


@dataclass(frozen=True, order=True)
class Watermark:
    """A position in Project B's changes: the version (updated_at, or deleted_at) and id of a change."""

    version: datetime
    client_id: UUID


@dataclass(frozen=True)
class ChangePage:
    """A page of Project B's changes: the clients written as ClientPage's JSON, the deletions as the JSON of
    [{id, deleted_at}], the position of the last change and how many changes."""

    clients_json: str
    absences_json: str
    last: Watermark | None
    count: int


@dataclass(frozen=True)
class OutcomeCounts:
    """How many clients had each outcome in Project A, over a page or the sum of pages; the conflicts with their
    ids, and the clients whose data was bounded on the way in (their notices)."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    archived: int = 0
    conflicts: list[ClientOutcome] = field(default_factory=list)
    bounded: list[ClientOutcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "archived": self.archived,
            "conflicts": len(self.conflicts),
        }

    def __add__(self, other: OutcomeCounts) -> OutcomeCounts:
        return OutcomeCounts(
            inserted=self.inserted + other.inserted,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            archived=self.archived + other.archived,
            conflicts=[*self.conflicts, *other.conflicts],
            bounded=[*self.bounded, *other.bounded],
        )


@dataclass(frozen=True)
class Conflict:
    """A conflict the sync remembers (a ClientOutcome's, with when it was seen and resolved)."""

    client_id: UUID
    kind: ConflictKind
    other_client_id: UUID | None
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class TherapistSyncAnswer:
    """Project A's answer to sync_client_as: `ok` with what writing the client did, or why not."""

    outcome: Literal["ok", "not_found", "not_a_therapist", "moved"]
    applied: ClientOutcome | None
    moved_to: UUID | None = None  # moved: the id was linked into this client


@dataclass(frozen=True)
class LinkSuggestion:
    """A native client of Project A and the Project B user with its email, suggested for linking since `since`."""

    client_id: UUID
    project_b_user_id: UUID
    since: datetime

    def as_json(self) -> dict[str, str]:
        return {
            "client_id": str(self.client_id),
            "project_b_user_id": str(self.project_b_user_id),
            "since": self.since.isoformat(),
        }


InviteOutcome = Literal[
    "ready",  # client_to_invite: the client may be invited (email and full_name given)
    "invited",  # record_invite: recorded, and the client is synced from Project B
    "already_invited",
    "not_found",  # not the caller's client, or no such client (one answer)
    "not_a_native_client",
    "archived",
    "client_has_no_email",
    "email_in_use",  # record_invite: another synced client has the email
    "not_a_therapist",
]


@dataclass(frozen=True)
class InviteCandidate:
    """Project A's answer about a client to invite: `ready` with what the Project B user and profile get (the
    client's email and name, never logged), or why not."""

    outcome: InviteOutcome
    client_id: UUID | None
    email: str | None = field(default=None, repr=False)
    full_name: str | None = field(default=None, repr=False)
    holder_id: UUID | None = None  # email_in_use: the synced client that has the email


@dataclass(frozen=True)
class InviteTarget:
    """What an invite meets in Project B: the user with the client's id (absent, invited: the one an invite from
    Project A created, or other) and whether they confirmed their email, and another user with the client's email,
    if any."""

    user: Literal["absent", "invited", "other"]
    email_user_id: UUID | None
    user_email_confirmed: bool = False


class ProjectA(Protocol):
    """Project A: bookings as the therapist, and writes of synced clients past row level security."""

    def book_session(self, request: BookingRequest, copy: SourceClient | None = None) -> BookingAnswer:
        """One round trip: check the therapist, write `copy` of the client if given, book."""
        ...

    def upsert_synced_clients(self, clients: Sequence[SourceClient]) -> list[ClientOutcome]:
        """Write Project B's states; one answer per distinct id, in id order."""
        ...

    def archive_synced_clients(self, absences: Sequence[Absence]) -> list[ClientOutcome]:
        """Archive clients Project B no longer has; one answer (archived or unchanged) per id."""
        ...

    def apply_sync_page(
        self,
        clients_json: str,
        absences_json: str,
        watermark: Watermark | None = None,
        *,
        dry_run: bool = False,
        run: RunMark | None = None,
    ) -> OutcomeCounts:
        """One statement: write a page of clients and absences (JSON texts, passed as they are) and, once they
        are written, keep `watermark` and add what the page did to its `run`. With dry_run, the same in a
        transaction that is rolled back."""
        ...

    def reconcile_watermark(self) -> Watermark | None:
        """Where reconcile stands, or None before its first page."""
        ...

    def conflicts(self, *, include_resolved: bool = False, limit: int = 1000) -> list[Conflict]:
        """The conflicts the sync remembers: the open ones, oldest first, or all."""
        ...

    def synced_client_ids(self, after: UUID | None, limit: int) -> list[UUID]:
        """Active clients synced from Project B, in id order after `after`."""
        ...

    def open_conflict_ids(self, after: UUID | None, limit: int) -> list[UUID]:
        """Clients with an open conflict, in id order after `after`."""
        ...

    def sync_client_as(self, claims: dict[str, Any], state: SourceState) -> TherapistSyncAnswer:
        """One statement: write Project B's state of a client for the therapist of `claims`, who claims it if
        nobody has; not_found when it is not theirs."""
        ...

    def link_suggestions(self, claims: dict[str, Any] | None, limit: int = 1000) -> list[LinkSuggestion] | None:
        """The open link suggestions of the therapist of `claims` (all of them without claims), oldest first;
        None when the claims' user is not a therapist."""
        ...

    def link_client(
        self,
        claims: dict[str, Any] | None,
        client_id: UUID,
        project_b_user_id: UUID,
        *,
        email_confirmed: bool,
        state: SourceState,
    ) -> tuple[str, UUID | None]:
        """One transaction: link the native client to the Project B user of an open suggestion of the therapist of
        `claims` (any without claims), `state` being Project B's: (linked, the new id), or (not_found |
        email_not_confirmed | not_a_therapist, None)."""
        ...

    def reject_link(self, claims: dict[str, Any] | None, client_id: UUID, project_b_user_id: UUID) -> str:
        """Close a suggestion of the therapist of `claims` (any without claims) as rejected: rejected, not_found
        or not_a_therapist."""
        ...

    def sync_status(self) -> dict[str, Any]:
        """The sync as Project A sees it: watermark, last_reconcile, last_backfill, open_conflicts and
        open_link_suggestions (public.sync_status's JSON)."""
        ...

    def client_to_invite(self, claims: dict[str, Any] | None, client_id: UUID) -> InviteCandidate:
        """Reads only: whether the therapist of `claims` (any client without claims) may invite the client, and
        with what email and name."""
        ...

    def record_invite(self, claims: dict[str, Any] | None, client_id: UUID, state: SourceState) -> InviteOutcome:
        """One transaction: the client checked again and locked, the invite kept, and Project B's `state` of the
        invited user written, which makes the client synced: invited, or why not."""
        ...


class ProjectB(Protocol):
    """Project B: clients (profile and email), read through its SQL functions."""

    def read_clients(self, client_ids: Sequence[UUID]) -> list[SourceState]:
        """The current state of each id, in the order asked, in one query."""
        ...

    def read_client_page(self, after: UUID | None, limit: int, until: UUID | None = None) -> ClientPage:
        """Up to `limit` clients in id order after `after` (exclusive) and up to `until` (inclusive)."""
        ...

    def read_changes(self, since: Watermark, limit: int) -> ChangePage:
        """Up to `limit` changes (profiles written, profiles deleted) after `since`, in (version, id) order."""
        ...

    def email_confirmed(self, user_id: UUID, email: str) -> bool:
        """Whether the user's email is `email` and confirmed (false for an unknown id)."""
        ...

    def invite_target(self, client_id: UUID, email: str) -> InviteTarget:
        """What an invite of the client with this email meets: the user with its id, another with its email."""
        ...

    def create_invited_profile(self, client_id: UUID, full_name: str) -> SourceState:
        """The profile of the user an invite created (the name only), once; the user's state."""
        ...


class ProjectBAuth(Protocol):
    """Project B's Auth admin API (GoTrue): the users an invite creates and the invitation it sends."""

    def create_user(self, user_id: UUID, email: str) -> bool:
        """Create the invited user under `user_id`, its email unconfirmed, marked as invited from Project A;
        False when a user already has the email."""
        ...

    def send_invitation(self, email: str) -> bool:
        """Project B mails the user an invitation link; False when the user has confirmed their email already
        (nothing to accept)."""
        ...
