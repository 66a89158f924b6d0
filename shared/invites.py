"""Invites: a therapist's own (native) client joins the clients' app, Project B, under the same UUID.

The steps, each safe to run again, so that a call after a crash anywhere goes on from where the last one stopped:
1. Project A: the caller's own client, native, active, with an email (reads only).
2. Project B: what the invite meets there (the user with the client's id, another user with its email).
3. Project B's Auth admin API: the user, under the client's id, its email unconfirmed, marked as invited from
   Project A (skipped when that user exists).
4. Project B: the user's profile, with the client's name only (kept when it exists).
5. Project B's Auth admin API: the invitation, a link mailed to the email Project B has (not when the user has
   confirmed it already).
6. Project A, in one transaction: the invite recorded and Project B's state written: the client is synced from
   Project B from then on. Asked again, the invite answers already_invited and sends nothing.
Another user with the client's email stops it before anything is written: the sync of that user, queued, suggests
the link instead (shared/links.py). Only ids are logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NoReturn
from uuid import UUID

from shared.auth import ServiceRole
from shared.errors import (
    ClientArchived,
    ClientHasNoEmail,
    ClientNotFound,
    EmailInUseInProjectB,
    IdInUseInProjectB,
    InvitesNotConfigured,
    NotANativeClient,
    NotATherapist,
)
from shared.links import claims_of
from shared.logs import log_context, log_event
from shared.models import Therapist
from shared.ports import InviteOutcome, ProjectA, ProjectB, ProjectBAuth
from shared.sync import CLIENT_NOT_FOUND, SyncService

NOT_CONFIGURED = (
    "Invites need Project B's Auth API: set PROJECT_B_URL (or PROJECT_B_AUTH_URL) and PROJECT_B_SERVICE_ROLE_KEY"
)


@dataclass(frozen=True)
class Invited:
    outcome: Literal["invited", "already_invited"]
    client_id: UUID


class InviteService:
    def __init__(self, project_a: ProjectA, project_b: ProjectB, auth: ProjectBAuth | None, sync: SyncService) -> None:
        self.project_a = project_a
        self.project_b = project_b
        self.auth = auth
        self.sync = sync

    def invite(self, caller: Therapist | ServiceRole, client_id: UUID) -> Invited:
        """Invite the caller's native client (any client for the service role) into Project B; see the module."""
        if self.auth is None:
            raise InvitesNotConfigured(NOT_CONFIGURED)
        claims = claims_of(caller)
        with log_context(client_id=client_id):
            candidate = self.project_a.client_to_invite(claims, client_id)
            if candidate.outcome == "already_invited" and candidate.client_id is not None:
                return Invited("already_invited", candidate.client_id)
            if candidate.outcome == "email_in_use" and candidate.holder_id is not None:
                self._email_in_use(candidate.holder_id)
            if candidate.outcome != "ready" or candidate.client_id is None:
                raise _refusal(candidate.outcome)
            invited_id = candidate.client_id
            confirmed = self._create_user(invited_id, candidate.email or "")
            state = self.project_b.create_invited_profile(invited_id, candidate.full_name or "")
            if state.client is None:  # the user was deleted from Project B meanwhile
                raise ClientNotFound(CLIENT_NOT_FOUND)
            # To the email Project B has (the user's own since an earlier call, if they changed it), never to
            # another address: Auth's invite of an address nobody has would create a user of its own.
            address = str(state.client.profile.get("email") or "")
            sent = not confirmed and bool(address) and self.auth.send_invitation(address)
            outcome = self.project_a.record_invite(claims, invited_id, state)
            if outcome == "already_invited":
                return Invited("already_invited", invited_id)
            if outcome != "invited":
                raise _refusal(outcome)
            log_event("client_invited", invitation_sent=sent)
            return Invited("invited", invited_id)

    def _create_user(self, client_id: UUID, email: str) -> bool:
        """Project B's user under the client's id: created, or found from an earlier call; whether its email is
        confirmed already. EmailInUseInProjectB (and the link suggested) when another user has the email."""
        assert self.auth is not None
        target = self.project_b.invite_target(client_id, email)
        if target.user == "absent" and target.email_user_id is None:
            if self.auth.create_user(client_id, email):
                return False
            target = self.project_b.invite_target(client_id, email)  # the email was taken meanwhile: by whom
        if target.user == "invited":
            return target.user_email_confirmed
        if target.user == "other":
            raise IdInUseInProjectB("A Project B user of its own has this client's id")
        self._email_in_use(target.email_user_id)

    def _email_in_use(self, holder_id: UUID | None) -> NoReturn:
        """Another user of Project B (or its copy in Project A) has the email: its sync suggests the link. The sync
        goes through the queue, so that a refused invite writes nothing (the webhook has mostly synced that user
        already); without a queue, the log line names the user for an operator to sync."""
        queued = holder_id is not None and self.sync.queue_sync(holder_id, reason="invite_email_in_use")
        log_event("invite_email_in_use", project_b_user_id=holder_id, queued=queued)
        raise EmailInUseInProjectB(
            "Another user of the clients' app has this email; the link is suggested once that user is synced"
        )


def _refusal(outcome: InviteOutcome) -> Exception:
    if outcome == "not_a_therapist":
        return NotATherapist("Only therapists invite clients")
    if outcome == "not_a_native_client":
        return NotANativeClient("The client is from the clients' app already")
    if outcome == "archived":
        return ClientArchived("The client is archived")
    if outcome == "client_has_no_email":
        return ClientHasNoEmail("The client has no email to send the invitation to")
    if outcome == "email_in_use":
        return EmailInUseInProjectB("Another client of the clients' app has this email")
    return ClientNotFound(CLIENT_NOT_FOUND)
