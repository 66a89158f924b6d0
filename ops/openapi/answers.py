"""pydantic models of what the HTTP functions answer, for the OpenAPI document. The functions build these bodies
themselves; tests/integration/test_api_fuzz.py checks every answer against the document."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.models import Session
from shared.ports import SyncOutcome


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreatedSession(Answer):
    """create_session's 201: the session, and whether this request copied its client from Project B."""

    session: Session
    client_synced: bool


class Applied(Answer):
    """The sync of one client: what it did in Project A (a conflict writes nothing)."""

    outcome: SyncOutcome
    client_id: UUID


class QueuedForRetry(Answer):
    """A project stayed unavailable: the client's id went to the retry queue."""

    queued: Literal[True]


class Counts(Answer):
    inserted: int = Field(ge=0)
    updated: int = Field(ge=0)
    unchanged: int = Field(ge=0)
    archived: int = Field(ge=0)
    conflicts: int = Field(ge=0)


class Page(Answer):
    """A page of a backfill or reconcile: call again with next_cursor until it is null."""

    counts: Counts
    next_cursor: str | None


class JobsQueued(Answer):
    """A sharded backfill: how many range jobs went to the queue."""

    queued: int = Field(ge=1)


class RunCounts(Answer):
    """A run's counts so far: each key once a page has counted it."""

    inserted: int = Field(default=0, ge=0)
    updated: int = Field(default=0, ge=0)
    unchanged: int = Field(default=0, ge=0)
    archived: int = Field(default=0, ge=0)
    conflicts: int = Field(default=0, ge=0)


class Run(Answer):
    """The last backfill or reconcile, as its pages recorded it."""

    started_at: datetime
    last_page_at: datetime
    finished_at: datetime | None
    parts: int = Field(ge=1)
    parts_done: int = Field(ge=0)
    counts: RunCounts


class QueueDepths(Answer):
    """SQS's approximate depths; dead_letter is null without the dead-letter queue's URL."""

    visible: int = Field(ge=0)
    in_flight: int = Field(ge=0)
    dead_letter: int | None = Field(ge=0)


class Status(Answer):
    """The sync's status (service_role only): lag_seconds is the watermark's age."""

    watermark: datetime | None
    lag_seconds: float | None = Field(ge=0)
    last_reconcile: Run | None
    last_backfill: Run | None
    open_conflicts: int = Field(ge=0)
    open_link_suggestions: int = Field(ge=0)
    queue: QueueDepths | None


class Invited(Answer):
    outcome: Literal["invited", "already_invited"]
    client_id: UUID


class LinkSuggestion(Answer):
    client_id: UUID
    project_b_user_id: UUID
    since: datetime


class LinkSuggestions(Answer):
    """Open link suggestions, oldest first, at most 1000."""

    suggestions: list[LinkSuggestion] = Field(max_length=1000)


class Linked(Answer):
    """The native client now has the Project B user's id: client_id is that id."""

    outcome: Literal["linked"]
    client_id: UUID


class Rejected(Answer):
    outcome: Literal["rejected"]
