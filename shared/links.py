"""Link suggestions: a Project B user whose email equals a native client's is never merged with it silently; the
sync suggests the link to that client's therapist, who alone sees it and may reject it for good."""

from __future__ import annotations

from uuid import UUID

from shared.auth import ServiceRole
from shared.errors import ClientNotFound, NotATherapist
from shared.logs import log_event
from shared.models import Therapist
from shared.ports import LinkSuggestion, ProjectA
from shared.sync import CLIENT_NOT_FOUND


class LinkService:
    def __init__(self, project_a: ProjectA) -> None:
        self.project_a = project_a

    def suggestions(self, caller: Therapist | ServiceRole) -> list[LinkSuggestion]:
        """The caller's open suggestions, oldest first (all of them for the service role); 403 for a user who is
        not a therapist."""
        claims = None if isinstance(caller, ServiceRole) else caller.claims
        found = self.project_a.link_suggestions(claims)
        if found is None:
            raise NotATherapist("Only therapists see link suggestions")
        return found

    def reject(self, caller: Therapist | ServiceRole, client_id: UUID, project_b_user_id: UUID) -> None:
        """Close the caller's suggestion of this pair for good; 404 client_not_found when the caller has no such
        suggestion (one answer whoever's the client is), 403 for a user who is not a therapist."""
        claims = None if isinstance(caller, ServiceRole) else caller.claims
        outcome = self.project_a.reject_link(claims, client_id, project_b_user_id)
        if outcome == "not_a_therapist":
            raise NotATherapist("Only therapists reject link suggestions")
        if outcome != "rejected":
            raise ClientNotFound(CLIENT_NOT_FOUND)
        log_event("link_rejected", client_id=client_id, project_b_user_id=project_b_user_id)
