"""Project B's Auth admin API (GoTrue), for invites (shared.ports.ProjectBAuth): the supabase distribution's
`supabase_auth` admin client (what `supabase.Client.auth.admin` is) over one httpx client per process, with
Project B's service-role key, and GoTrue's answers mapped to this project's errors. The library has no retries of
its own; tenacity's (shared/retry.py) are the only ones.

Sources: GoTrue's internal/api/admin.go (adminUserCreate: `id` since v2.155, 422 email_exists before anything is
written), internal/api/invite.go (an unconfirmed user is invited again; a confirmed one is 422 email_exists),
internal/api/errors.go (with the API version header 2024-01-01, errors are {code, message}).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from uuid import UUID

import httpx
from supabase_auth import SyncGoTrueAdminAPI
from supabase_auth.errors import AuthApiError, AuthError, AuthRetryableError, AuthUnknownError

from shared.config import Settings
from shared.errors import InvalidClientEmail, InvitesNotConfigured, TransientError, UpstreamUnavailable
from shared.retry import retried

if TYPE_CHECKING:
    from supabase_auth.types import AdminUserAttributes

# httpx logs every request at INFO, its URL included: the functions' log lines are their own (shared/logs.py), ids only.
logging.getLogger("httpx").setLevel(logging.WARNING)

# The mark of a user an invite from Project A created: app_metadata, which only the service role writes. Project B's
# SQL (invite_target, create_invited_profile) reads it.
INVITED_FROM = {"invited_from": "project_a"}
_EMAIL_EXISTS = "email_exists"
_EMAIL_REFUSED = frozenset({"validation_failed", "email_address_invalid"})
_KEY_REFUSED = frozenset({"no_authorization", "bad_jwt", "not_admin"})


class AuthAdminError(Exception):
    """Project B's Auth API refused a call for a reason that will not pass (a rejected key, a refused request): a
    fault of the deployment, answered 500 without its details."""

    def __init__(self, call: str, status: int, code: str | None) -> None:
        super().__init__(f"auth {call} failed: HTTP {status} {code or 'no code'}")


class AuthAdminProjectB:
    """Project B's users as its Auth admin API creates and invites them."""

    project = "project_b_auth"

    def __init__(self, settings: Settings, url: str, key: str) -> None:
        self.settings = settings
        self._url = url
        self._key = key
        self._client: SyncGoTrueAdminAPI | None = None
        self._lock = threading.Lock()

    def _admin(self) -> SyncGoTrueAdminAPI:
        with self._lock:
            if self._client is None:
                timeout = httpx.Timeout(
                    connect=self.settings.http_connect_timeout_seconds,
                    read=self.settings.project_b_auth_timeout_seconds,  # an invite waits for Auth's mailer
                    write=self.settings.http_connect_timeout_seconds,
                    pool=self.settings.db_pool_timeout_seconds,
                )
                headers = {"apikey": self._key, "Authorization": f"Bearer {self._key}"}
                http = httpx.Client(timeout=timeout, follow_redirects=False)
                self._client = SyncGoTrueAdminAPI(url=self._url, headers=headers, http_client=http)
            return self._client

    @retried
    def create_user(self, user_id: UUID, email: str) -> bool:
        attributes: AdminUserAttributes = {
            "id": str(user_id),
            "email": email,
            "email_confirm": False,
            "app_metadata": INVITED_FROM,
        }
        return _unless_email_exists("create_user", lambda: self._admin().create_user(attributes))

    @retried
    def send_invitation(self, email: str) -> bool:
        return _unless_email_exists("invite_user_by_email", lambda: self._admin().invite_user_by_email(email))


def _unless_email_exists(call: str, request: Callable[[], object]) -> bool:
    """Make the Auth call; False when GoTrue answers that a (confirmed) user has the email, else its refusal
    mapped (_mapped)."""
    try:
        request()
    except AuthError as exc:
        if isinstance(exc, AuthApiError) and exc.code == _EMAIL_EXISTS:
            return False
        raise _mapped(call, exc) from exc
    return True


def _mapped(call: str, exc: AuthError) -> Exception:
    """What a refusal of Auth means here: a fault that may pass (no answer, a 5xx or an answer that is not
    GoTrue's) is a TransientError, retried; a rate limit is answered 503 at once (it lasts longer than a request);
    a refused key or a mailer that may not send is the deployment's (503, naming it); an address GoTrue refuses is
    the client's (409); anything else is a fault of this code (500)."""
    status = int(getattr(exc, "status", 0) or 0)
    if isinstance(exc, AuthRetryableError | AuthUnknownError) or status >= 500:
        return TransientError(f"Auth {call}: HTTP {status}")
    if status == 429:
        return UpstreamUnavailable("Project B's Auth is limiting requests or emails; try again later")
    if status in (401, 403) or exc.code in _KEY_REFUSED:
        return InvitesNotConfigured("Project B's Auth refused the service-role key: check PROJECT_B_SERVICE_ROLE_KEY")
    if exc.code == "email_address_not_authorized":
        return InvitesNotConfigured("Project B's Auth may not send mail to this address: set up its SMTP")
    if exc.code in _EMAIL_REFUSED:
        return InvalidClientEmail("Project B does not accept the client's email address")
    return AuthAdminError(call, status, exc.code)
