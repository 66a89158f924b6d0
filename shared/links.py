"""Link suggestions: a Project B user whose email equals a native client's is never merged with it silently; the
sync suggests the link to that client's therapist, who sees only their own suggestions."""

from __future__ import annotations

from shared.auth import ServiceRole
from shared.errors import NotATherapist
from shared.models import Therapist
from shared.ports import LinkSuggestion, ProjectA


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
