"""The client backend: Project A and Project B through PostgREST's rpc (shared/stores/rpc_http.py), with each
project's URL and service-role key. It calls the SQL functions the Postgres backend (shared/stores/postgres.py)
calls, and answers the same types.

A booking's therapist part goes with the therapist's own access token: PostgREST runs public.create_session as
`authenticated`, under row level security, as book_session_as does on a direct connection. What must see past row
level security (the copy of a client, whether Project A holds an id elsewhere) goes with the service-role key and
the verified claims (public.copy_client_as). A booking of a synced client is one request to Project A.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from shared.config import Project, Settings
from shared.models import SourceClient
from shared.ports import (
    Absence,
    BookingAnswer,
    BookingRequest,
    ChangePage,
    ClientOutcome,
    ClientPage,
    Conflict,
    InviteCandidate,
    InviteOutcome,
    InviteTarget,
    LinkSuggestion,
    OutcomeCounts,
    RunMark,
    SourceState,
    TherapistSyncAnswer,
    Watermark,
)
from shared.retry import retried
from shared.stores.answers import (
    client_outcome,
    invite_candidate,
    invite_target,
    link_answer,
    link_suggestions,
    outcome_counts,
    source_state,
    therapist_sync_answer,
    timestamp,
)
from shared.stores.rpc_http import call_rpc, http_endpoint

RECONCILE = "reconcile"


class _RpcProject:
    project: Project

    def __init__(self, settings: Settings) -> None:
        url, key = getattr(settings, f"{self.project}_url"), getattr(settings, f"{self.project}_service_role_key")
        if url is None or key is None:
            prefix = self.project.upper()
            raise RuntimeError(f"{prefix}_URL and {prefix}_SERVICE_ROLE_KEY are not set")
        self.settings = settings
        self._url: str = url
        self._key: str = key.get_secret_value()

    def _call(self, function: str, params: dict[str, Any], *, token: str | None = None) -> Any:
        """One rpc: with the service-role key as bearer, or with `token` (a therapist's)."""
        endpoint = http_endpoint(self.project, self._url, self.settings)
        return call_rpc(endpoint, self._url, function, params, key=self._key, token=token or self._key)


class RpcProjectA(_RpcProject):
    """Project A (shared.ports.ProjectA) over PostgREST."""

    project: Project = "project_a"

    @retried
    def book_session(self, request: BookingRequest, copy: SourceClient | None = None) -> BookingAnswer:
        if request.access_token is None:
            raise RuntimeError("the client backend books with the therapist's access token")
        copied: dict[str, Any] | None = None
        if copy is not None:
            copied = self._call(
                "copy_client_as",
                {
                    "p_claims": request.claims,
                    "p_client_id": str(request.client_id),
                    "p_client": copy.model_dump(mode="json"),
                },
            )
            if copied.get("outcome") == "not_a_therapist":
                return BookingAnswer(outcome="not_a_therapist", session=None, copy=None)
        answer = self._call("create_session", _create_session_params(request), token=request.access_token)
        outcome = answer["outcome"]
        held_elsewhere = False
        if outcome == "not_found" and copied is None:
            # As book_session_as does: whether any copy could help, so that every 404 costs the same.
            held = self._call("copy_client_as", {"p_claims": request.claims, "p_client_id": str(request.client_id)})
            held_elsewhere = bool(held.get("held_elsewhere"))
        if outcome == "not_found" and copied is not None and copied.get("copy_refused"):
            outcome = "email_conflict"
        written = copied.get("client") if copied is not None else None
        return BookingAnswer(
            outcome=outcome,
            session=answer.get("session") if outcome != "email_conflict" else None,
            copy=client_outcome(written) if written else None,
            held_elsewhere=held_elsewhere,
        )

    @retried
    def upsert_synced_clients(self, clients: Sequence[SourceClient]) -> list[ClientOutcome]:
        rows = self._call(
            "upsert_synced_clients", {"p_clients": [client.model_dump(mode="json") for client in clients]}
        )
        return [client_outcome(row) for row in rows]

    @retried
    def archive_synced_clients(self, absences: Sequence[Absence]) -> list[ClientOutcome]:
        rows = self._call("archive_synced_clients", {"p_absences": [absence.as_json() for absence in absences]})
        return [ClientOutcome(client_id=UUID(row["client_id"]), outcome=row["outcome"]) for row in rows]

    @retried
    def apply_sync_page(
        self,
        clients_json: str,
        absences_json: str,
        watermark: Watermark | None = None,
        *,
        dry_run: bool = False,
        run: RunMark | None = None,
    ) -> OutcomeCounts:
        params = {
            "p_clients": json.loads(clients_json),
            "p_absences": json.loads(absences_json),
            "p_state_name": RECONCILE if watermark else None,
            "p_watermark": watermark.version.isoformat() if watermark else None,
            "p_watermark_id": str(watermark.client_id) if watermark else None,
            "p_run": run.as_json() if run else None,
        }
        answer = self._call("apply_sync_page_dry_run" if dry_run else "apply_sync_page", params)
        return outcome_counts(answer)

    @retried
    def reconcile_watermark(self) -> Watermark | None:
        rows = self._call("sync_watermark", {"p_name": RECONCILE})
        if not rows:
            return None
        return Watermark(version=timestamp(rows[0]["watermark"]), client_id=UUID(rows[0]["watermark_id"]))

    @retried
    def conflicts(self, *, include_resolved: bool = False, limit: int = 1000) -> list[Conflict]:
        rows = self._call("sync_conflicts", {"p_include_resolved": include_resolved, "p_limit": limit})
        return [
            Conflict(
                client_id=UUID(row["client_id"]),
                kind=row["kind"],
                other_client_id=UUID(row["other_client_id"]) if row["other_client_id"] else None,
                first_seen=timestamp(row["first_seen"]),
                last_seen=timestamp(row["last_seen"]),
                resolved_at=timestamp(row["resolved_at"]) if row["resolved_at"] else None,
            )
            for row in rows
        ]

    @retried
    def sync_client_as(self, claims: dict[str, Any], state: SourceState) -> TherapistSyncAnswer:
        params = {
            "p_claims": claims,
            "p_client_id": str(state.client_id),
            "p_client": state.client.model_dump(mode="json") if state.client is not None else None,
            "p_absence": state.absence.as_json() if state.absence is not None else None,
        }
        return therapist_sync_answer(self._call("sync_client_as", params))

    @retried
    def link_suggestions(self, claims: dict[str, Any] | None, limit: int = 1000) -> list[LinkSuggestion] | None:
        return link_suggestions(self._call("link_suggestions_for", {"p_claims": claims, "p_limit": limit}))

    @retried
    def link_client(
        self,
        claims: dict[str, Any] | None,
        client_id: UUID,
        project_b_user_id: UUID,
        *,
        email_confirmed: bool,
        state: SourceState,
    ) -> tuple[str, UUID | None]:
        params = {
            "p_claims": claims,
            "p_client_id": str(client_id),
            "p_project_b_user_id": str(project_b_user_id),
            "p_email_confirmed": email_confirmed,
            "p_client": state.client.model_dump(mode="json") if state.client is not None else None,
        }
        return link_answer(self._call("link_client_as", params))

    @retried
    def reject_link(self, claims: dict[str, Any] | None, client_id: UUID, project_b_user_id: UUID) -> str:
        params = {"p_claims": claims, "p_client_id": str(client_id), "p_project_b_user_id": str(project_b_user_id)}
        return str(self._call("reject_link_as", params)["outcome"])

    @retried
    def sync_status(self) -> dict[str, Any]:
        return dict(self._call("sync_status", {}) or {})

    @retried
    def client_to_invite(self, claims: dict[str, Any] | None, client_id: UUID) -> InviteCandidate:
        return invite_candidate(self._call("client_to_invite_as", {"p_claims": claims, "p_client_id": str(client_id)}))

    @retried
    def record_invite(self, claims: dict[str, Any] | None, client_id: UUID, state: SourceState) -> InviteOutcome:
        params = {
            "p_claims": claims,
            "p_client_id": str(client_id),
            "p_client": state.client.model_dump(mode="json") if state.client is not None else None,
        }
        return invite_candidate(self._call("record_invite_as", params)).outcome

    @retried
    def synced_client_ids(self, after: UUID | None, limit: int) -> list[UUID]:
        rows = self._call("synced_client_ids", {"p_after": str(after) if after else None, "p_limit": limit})
        return [UUID(row) for row in rows]

    @retried
    def open_conflict_ids(self, after: UUID | None, limit: int) -> list[UUID]:
        rows = self._call("open_conflict_ids", {"p_after": str(after) if after else None, "p_limit": limit})
        return [UUID(row) for row in rows]


class RpcProjectB(_RpcProject):
    """Project B (shared.ports.ProjectB) over PostgREST."""

    project: Project = "project_b"

    @retried
    def read_clients(self, client_ids: Sequence[UUID]) -> list[SourceState]:
        rows = self._call("client_states", {"p_ids": [str(client_id) for client_id in client_ids]})
        return [source_state(row) for row in rows]

    @retried
    def email_confirmed(self, user_id: UUID, email: str) -> bool:
        return bool(self._call("email_confirmed", {"p_user_id": str(user_id), "p_email": email}))

    @retried
    def invite_target(self, client_id: UUID, email: str) -> InviteTarget:
        return invite_target(self._call("invite_target", {"p_id": str(client_id), "p_email": email}))

    @retried
    def create_invited_profile(self, client_id: UUID, full_name: str) -> SourceState:
        rows = self._call("create_invited_profile", {"p_id": str(client_id), "p_name": full_name})
        return source_state(rows[0])

    @retried
    def read_client_page(self, after: UUID | None, limit: int, until: UUID | None = None) -> ClientPage:
        params = {"p_after": str(after) if after else None, "p_limit": limit, "p_until": str(until) if until else None}
        rows = self._call("client_page", params)
        if not rows:
            return ClientPage(clients_json="[]", last_id=None, count=0)
        row = rows[0]
        last_id = UUID(row["last_id"]) if row["last_id"] else None
        return ClientPage(clients_json=json.dumps(row["clients"]), last_id=last_id, count=row["count"])

    @retried
    def read_changes(self, since: Watermark, limit: int) -> ChangePage:
        params = {"p_since": since.version.isoformat(), "p_since_id": str(since.client_id), "p_limit": limit}
        rows = self._call("client_changes", params)
        if not rows:
            return ChangePage(clients_json="[]", absences_json="[]", last=None, count=0)
        row = rows[0]
        last = None
        if row["last_id"] is not None:
            last = Watermark(version=timestamp(row["last_version"]), client_id=UUID(row["last_id"]))
        return ChangePage(
            clients_json=json.dumps(row["clients"]),
            absences_json=json.dumps(row["absences"]),
            last=last,
            count=row["count"],
        )


def _create_session_params(request: BookingRequest) -> dict[str, Any]:
    return {
        "p_client_id": str(request.client_id),
        "p_starts_at": request.starts_at.isoformat(),
        "p_duration_minutes": request.duration_minutes,
        "p_notes": request.notes,
        "p_idempotency_key": request.idempotency_key,
    }
