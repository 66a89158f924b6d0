"""What the SQL functions answer, as the ports' types: the same for both backends (a direct connection gives
Python values, PostgREST's rpc JSON; both parse here)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.models import SourceClient
from shared.ports import (
    Absence,
    ClientOutcome,
    InviteCandidate,
    InviteTarget,
    LinkSuggestion,
    OutcomeCounts,
    SourceState,
    TherapistSyncAnswer,
)


def source_client(row: Mapping[str, Any]) -> SourceClient:
    """A client of Project B from a row of client_states (id, profile, updated_at, version_clamped)."""
    return SourceClient(
        id=row["id"],
        profile=row["profile"],
        updated_at=row["updated_at"],
        version_clamped=bool(row.get("version_clamped")),
    )


def source_state(row: Mapping[str, Any]) -> SourceState:
    """One id's state from a row of client_states (id, profile, updated_at, deleted_at, read_at)."""
    client_id = uuid_of(row["id"])
    if row["profile"] is not None:
        return SourceState(client_id=client_id, client=source_client(row), absence=None)
    deleted_at = timestamp(row["deleted_at"]) if row["deleted_at"] is not None else None
    absence = Absence(client_id=client_id, deleted_at=deleted_at, read_at=timestamp(row["read_at"]))
    return SourceState(client_id=client_id, client=None, absence=absence)


def uuid_of(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def timestamp(value: datetime | str) -> datetime:
    """A timestamptz as psycopg gives it, or as JSON has it (ISO 8601 with its offset)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def outcome_counts(answer: Mapping[str, Any]) -> OutcomeCounts:
    """apply_sync_page's JSON answer."""
    return OutcomeCounts(
        inserted=answer["inserted"],
        updated=answer["updated"],
        unchanged=answer["unchanged"],
        archived=answer["archived"],
        conflicts=[
            client_outcome({**c, "outcome": "conflict", "conflict": c["kind"]}) for c in answer["conflict_list"]
        ],
        bounded=[client_outcome(bounded) for bounded in answer["notices"]],
    )


def client_outcome(row: Mapping[str, Any]) -> ClientOutcome:
    other = row.get("other_client_id")
    return ClientOutcome(
        client_id=UUID(str(row["client_id"])),
        outcome=row["outcome"],
        conflict=row.get("conflict"),
        other_client_id=UUID(str(other)) if other else None,
        notices=tuple(row.get("notices") or ()),
    )


def link_suggestions(answer: Mapping[str, Any]) -> list[LinkSuggestion] | None:
    """link_suggestions_for's JSON answer; None for not_a_therapist."""
    if answer["outcome"] != "ok":
        return None
    return [
        LinkSuggestion(
            client_id=uuid_of(row["client_id"]),
            project_b_user_id=uuid_of(row["project_b_user_id"]),
            since=timestamp(row["since"]),
        )
        for row in answer["suggestions"]
    ]


def therapist_sync_answer(answer: Mapping[str, Any]) -> TherapistSyncAnswer:
    """sync_client_as's JSON answer."""
    sync = answer.get("sync")
    moved_to = answer.get("client_id") if answer["outcome"] == "moved" else None
    return TherapistSyncAnswer(
        outcome=answer["outcome"],
        applied=client_outcome(sync) if sync else None,
        moved_to=uuid_of(moved_to) if moved_to else None,
    )


def link_answer(answer: Mapping[str, Any]) -> tuple[str, UUID | None]:
    """link_client_as's JSON answer."""
    client_id = answer.get("client_id")
    return str(answer["outcome"]), uuid_of(client_id) if client_id else None


def invite_candidate(answer: Mapping[str, Any]) -> InviteCandidate:
    client_id = answer.get("client_id")
    return InviteCandidate(
        outcome=answer["outcome"],
        client_id=uuid_of(client_id) if client_id else None,
        email=answer.get("email"),
        full_name=answer.get("full_name"),
        holder_id=uuid_of(answer["holder_id"]) if answer.get("holder_id") else None,
    )


def invite_target(answer: Mapping[str, Any]) -> InviteTarget:
    email_user_id = answer.get("email_user_id")
    return InviteTarget(
        user=answer["user"],
        email_user_id=uuid_of(email_user_id) if email_user_id else None,
        user_email_confirmed=bool(answer.get("user_email_confirmed")),
    )
