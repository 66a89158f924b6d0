"""pydantic models of every input and of the rows that move between the projects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from shared.config import MAX_PAGE_SIZE

IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")]
IdempotencyKeyHeader: TypeAdapter[str] = TypeAdapter(IdempotencyKey)


class CreateSessionRequest(BaseModel):
    """The body of create_session. The therapist comes from the token, so it is not a field."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    client_id: UUID
    starts_at: AwareDatetime
    duration_minutes: int = Field(default=50, ge=1, le=600)
    notes: str | None = Field(default=None, max_length=10_000)

    @field_validator("starts_at")
    @classmethod
    def _starts_at_in_utc_range(cls, value: datetime) -> datetime:
        # 9999-12-31T23:00-14:00 parses, but is in year 10000 in UTC: Postgres would store it and the answer
        # could not be read back. In UTC, an offset over Postgres's ±15:59 (RFC 3339 allows ±23:59) reaches it
        # as an instant it takes.
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValueError("must be between years 1 and 9999 in UTC") from None


class Therapist(BaseModel):
    """The verified caller: its id is the token's `sub`; claims go to Postgres as PostgREST sends them, and the
    token itself to PostgREST when Project A is reached over HTTP (the client backend)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    claims: dict[str, Any]
    access_token: SecretStr | None = None


class SourceClient(BaseModel):
    """A client as Project B states it: its profile's synced fields with the auth user's email (as Project B's
    private.synced_profile_fields names them) and its version. Project A's SQL maps it to its columns."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    profile: dict[str, Any]
    updated_at: datetime | None = None
    # Project B read a bad version (infinite, or past the time of reading plus the skew) as the time of reading.
    version_clamped: bool = False


class Session(BaseModel):
    """A booked session, as create_session answers it."""

    id: UUID
    client_id: UUID
    therapist_id: UUID
    starts_at: datetime
    duration_minutes: int
    status: str
    notes: str | None
    created_at: datetime


class WebhookRecord(BaseModel):
    """A row in a webhook payload: only its id is trusted; the sync re-reads the rest from Project B."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: UUID


class WebhookEvent(BaseModel):
    """The payload of a Supabase database webhook."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    type: Literal["INSERT", "UPDATE", "DELETE"]
    table: str = Field(min_length=1)
    schema_name: str = Field(alias="schema", min_length=1)
    record: WebhookRecord | None
    old_record: WebhookRecord | None

    @model_validator(mode="after")
    def _rows_match_the_type(self) -> WebhookEvent:
        if self.type == "DELETE" and self.old_record is None:
            raise ValueError("a DELETE event needs old_record")
        if self.type != "DELETE" and self.record is None:
            raise ValueError(f"an {self.type} event needs record")
        return self

    @property
    def source(self) -> str:
        return f"{self.schema_name}.{self.table}"

    @property
    def client_id(self) -> UUID:
        row = self.record if self.record is not None else self.old_record
        assert row is not None  # guaranteed by the validator
        return row.id


class QueuedSync(BaseModel):
    """A message of the retry queue: which client to sync again, and the event that asked. Ids only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: UUID
    table: str
    type: Literal["INSERT", "UPDATE", "DELETE"]


class BackfillRange(BaseModel):
    """A job of a sharded backfill: the Project B clients with ids from `start` to `end` (inclusive), from
    after `cursor` on (null: from `start`). A job that runs out of time queues its remainder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["backfill_range"]
    start: UUID
    end: UUID
    cursor: UUID | None = None

    @model_validator(mode="after")
    def _cursor_within_the_range(self) -> BackfillRange:
        # UUIDs order as Postgres orders them (by their 128-bit value), so this is the range the SQL pages.
        if self.start > self.end:
            raise ValueError("start is after end")
        if self.cursor is not None and not self.start <= self.cursor <= self.end:
            raise ValueError("cursor is outside [start, end]")
        return self


# A message of sync_client's queue: a webhook retry or a backfill job.
QUEUE_MESSAGE: TypeAdapter[QueuedSync | BackfillRange] = TypeAdapter(QueuedSync | BackfillRange)


class SyncOneRequest(BaseModel):
    """sync_client's body for one client."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    client_id: UUID


class LinkSuggestionsRequest(BaseModel):
    """sync_client's body for the caller's open link suggestions."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    mode: Literal["links"]


class StatusRequest(BaseModel):
    """sync_client's body asking for the sync's status (service_role only)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    mode: Literal["status"]


class InviteRequest(BaseModel):
    """sync_client's body inviting a native client into Project B under the same UUID."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    mode: Literal["invite"]
    client_id: UUID


class LinkRequest(BaseModel):
    """sync_client's body linking a native client to the Project B user of a suggestion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    mode: Literal["link"]
    client_id: UUID
    project_b_user_id: UUID


class RejectLinkRequest(BaseModel):
    """sync_client's body closing a link suggestion for good."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    mode: Literal["reject_link"]
    client_id: UUID
    project_b_user_id: UUID


class BulkSyncRequest(BaseModel):
    """sync_client's body for a page of a backfill or reconcile, or for queueing a sharded backfill."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    mode: Literal["backfill", "reconcile"]
    cursor: str | None = Field(default=None, max_length=200)
    limit: int | None = Field(default=None, ge=1, le=MAX_PAGE_SIZE)  # None: SYNC_PAGE_SIZE
    dry_run: bool = False
    full: bool = False
    shards: int | None = Field(default=None, ge=2, le=256)

    @model_validator(mode="after")
    def _options_fit_the_mode(self) -> BulkSyncRequest:
        if self.shards is not None and (self.mode != "backfill" or self.cursor is not None or self.dry_run):
            raise ValueError("shards is for a backfill from the start, without cursor or dry_run")
        if self.full and self.mode != "reconcile":
            raise ValueError("full is for reconcile")
        return self
