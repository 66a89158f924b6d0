"""Project B's Auth admin API (GoTrue), for invites (shared.ports.ProjectBAuth): the supabase distribution's
`supabase_auth` admin client (what `supabase.Client.auth.admin` is) over one httpx client per process, with
Project B's service-role key, and GoTrue's answers mapped to this project's errors. The library has no retries of
its own; tenacity's (shared/retry.py) are the only ones.

Sources: GoTrue's internal/api/admin.go (adminUserCreate: `id` since v2.155, 422 email_exists before anything is
written), internal/api/invite.go (an unconfirmed user is invited again; a confirmed one is 422 email_exists),
internal/api/errors.go (with the API version header 2024-01-01, errors are {code, message}).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from uuid import UUID

import httpx
from supabase_auth import SyncGoTrueAdminAPI
from supabase_auth.errors import AuthApiError, AuthError, AuthRetryableError

from shared.config import Settings
from shared.errors import InvalidClientEmail, TransientError
from shared.retry import retried

if TYPE_CHECKING:
    from supabase_auth.types import AdminUserAttributes

# The mark of a user an invite from Project A created: app_metadata, which only the service role writes. Project B's
# SQL (invite_target, create_invited_profile) reads it.
INVITED_FROM = {"invited_from": "project_a"}
_EMAIL_EXISTS = "email_exists"
_EMAIL_REFUSED = frozenset({"validation_failed", "email_address_invalid", "email_address_not_authorized"})


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
                    read=self.settings.project_b_statement_timeout_ms / 1000 + self.settings.http_read_margin_seconds,
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
        try:
            self._admin().create_user(attributes)
        except AuthError as exc:
            if isinstance(exc, AuthApiError) and exc.code == _EMAIL_EXISTS:
                return False
            raise _mapped("create_user", exc) from exc
        return True

    @retried
    def send_invitation(self, email: str) -> bool:
        try:
            self._admin().invite_user_by_email(email)
        except AuthError as exc:
            if isinstance(exc, AuthApiError) and exc.code == _EMAIL_EXISTS:
                return False
            raise _mapped("invite_user_by_email", exc) from exc
        return True


def _mapped(call: str, exc: AuthError) -> Exception:
    """A fault that may pass (no answer, 429, 5xx) is a TransientError; an email GoTrue refuses is the client's."""
    status = getattr(exc, "status", 0)
    if isinstance(exc, AuthRetryableError) or status == 429 or status >= 500:
        return TransientError(f"Auth {call}: HTTP {status}")
    if exc.code in _EMAIL_REFUSED:
        return InvalidClientEmail("Project B does not accept the client's email address")
    return AuthAdminError(call, status, exc.code)
