"""Link suggestions: a Project B user whose email equals a native client's is never merged with it silently; the
sync suggests the link to that client's therapist, who alone sees it, and links it (once Project B has confirmed
the email) or rejects it for good."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.auth import ServiceRole
from shared.errors import ClientNotFound, EmailNotConfirmed, NotATherapist
from shared.logs import log_context, log_event
from shared.models import Therapist
from shared.ports import LinkSuggestion, ProjectA, ProjectB
from shared.sync import CLIENT_NOT_FOUND

LINKS_LIMIT = 1000  # suggestions per answer, oldest first


def claims_of(caller: Therapist | ServiceRole) -> dict[str, Any] | None:
    """What the SQL functions act for: the therapist's verified claims, or none for the service role (all)."""
    return None if isinstance(caller, ServiceRole) else caller.claims


class LinkService:
    def __init__(self, project_a: ProjectA, project_b: ProjectB) -> None:
        self.project_a = project_a
        self.project_b = project_b

    def suggestions(self, caller: Therapist | ServiceRole) -> list[LinkSuggestion]:
        """The caller's open suggestions, oldest first (all of them for the service role); 403 for a user who is
        not a therapist."""
        found = self.project_a.link_suggestions(claims_of(caller), LINKS_LIMIT)
        if found is None:
            raise NotATherapist("Only therapists see link suggestions")
        return found

    def reject(self, caller: Therapist | ServiceRole, client_id: UUID, project_b_user_id: UUID) -> None:
        """Close the caller's suggestion of this pair for good; 404 client_not_found when the caller has no such
        suggestion (one answer whoever's the client is), 403 for a user who is not a therapist."""
        outcome = self.project_a.reject_link(claims_of(caller), client_id, project_b_user_id)
        if outcome == "not_a_therapist":
            raise NotATherapist("Only therapists reject link suggestions")
        if outcome != "rejected":
            raise ClientNotFound(CLIENT_NOT_FOUND)
        log_event("link_rejected", client_id=client_id, project_b_user_id=project_b_user_id)

    def link(self, caller: Therapist | ServiceRole, client_id: UUID, project_b_user_id: UUID) -> UUID:
        """Link the caller's native client to the Project B user of their open suggestion; the new id. 404
        client_not_found for anything else (one answer, and the same requests, whoever's the client is), 409
        email_not_confirmed while the user has not confirmed their email, 403 for a user who is not a therapist."""
        claims = claims_of(caller)
        with log_context(client_id=client_id, project_b_user_id=project_b_user_id):
            (state,) = self.project_b.read_clients([project_b_user_id])
            # The email the link will match (Project A compares it with the native client's), confirmed as such.
            email = str(state.client.profile.get("email") or "") if state.client is not None else ""
            confirmed = self.project_b.email_confirmed(project_b_user_id, email)
            outcome, linked = self.project_a.link_client(
                claims, client_id, project_b_user_id, email_confirmed=confirmed, state=state
            )
            if outcome == "not_a_therapist":
                raise NotATherapist("Only therapists link clients")
            if outcome == "email_not_confirmed":
                raise EmailNotConfirmed("The client has not confirmed this email in the clients' app yet")
            if outcome != "linked" or linked is None:
                raise ClientNotFound(CLIENT_NOT_FOUND)
            log_event("client_linked")
            return linked
