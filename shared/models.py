"""pydantic models of every input and of the rows that move between the projects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, model_validator

IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")]
IdempotencyKeyHeader: TypeAdapter[str] = TypeAdapter(IdempotencyKey)


class CreateSessionRequest(BaseModel):
    """The body of create_session. The therapist comes from the token, so it is not a field."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    client_id: UUID
    starts_at: AwareDatetime
    duration_minutes: int = Field(default=50, ge=1, le=600)
    notes: str | None = Field(default=None, max_length=10_000)


class Therapist(BaseModel):
    """The verified caller: its id is the token's `sub`; claims go to Postgres as PostgREST sends them."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    claims: dict[str, Any]


class SourceClient(BaseModel):
    """A client as Project B has it: the profile with the email of its auth user. `attributes` holds every
    other synced field of the profile, as Project B's private.client_profile() names them (the one place)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    name: str | None = None
    email: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    updated_at: datetime | None = None


class ClientRow(BaseModel):
    """The Project A `clients` columns a sync writes."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    full_name: str
    email: str | None
    notes: str
    source_attributes: dict[str, Any]
    source_updated_at: datetime | None


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


UNNAMED_CLIENT = "Unnamed client"


def client_row_from_source(source: SourceClient) -> ClientRow:
    """The mapping of the design document: same id, name, email, a note of what Project B knew."""
    age, gender = source.attributes.get("age"), source.attributes.get("gender_identity")
    details = []
    if age is not None:
        details.append(f"Age: {age}")
    if gender:
        details.append(f"Gender: {gender}")
    notes = "Synced from Project B." + (" " + ", ".join(details) if details else "")
    name = (source.name or "").strip()
    return ClientRow(
        id=source.id,
        full_name=name or UNNAMED_CLIENT,
        email=source.email.strip() if source.email and source.email.strip() else None,
        notes=notes,
        source_attributes=dict(source.attributes),
        source_updated_at=source.updated_at,
    )
