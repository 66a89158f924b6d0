"""How Project B's Auth refusals map to this project's errors (shared/stores/auth_admin.py): no network."""

from __future__ import annotations

import httpx
import pytest
from supabase_auth.errors import AuthApiError, AuthError, AuthRetryableError, AuthUnknownError

from shared.errors import InvalidClientEmail, InvitesNotConfigured, TransientError, UpstreamUnavailable
from shared.stores.auth_admin import AuthAdminError, _mapped

UNKNOWN = AuthUnknownError(
    "not JSON", httpx.HTTPStatusError("502", request=httpx.Request("POST", "x"), response=httpx.Response(418))
)


@pytest.mark.parametrize(
    ("error", "mapped"),
    [
        (AuthRetryableError("connection refused", 0), TransientError),
        (UNKNOWN, TransientError),
        (AuthApiError("Database error creating new user", 500, "unexpected_failure"), TransientError),
        (AuthApiError("Email rate limit exceeded", 429, "over_email_send_rate_limit"), UpstreamUnavailable),
        (AuthApiError("This endpoint requires a valid Bearer token", 401, "no_authorization"), InvitesNotConfigured),
        (AuthApiError("Invalid API key", 401, None), InvitesNotConfigured),
        (AuthApiError("User not allowed", 403, "not_admin"), InvitesNotConfigured),
        (AuthApiError("invalid JWT", 403, "bad_jwt"), InvitesNotConfigured),
        (AuthApiError("Email address not authorized", 400, "email_address_not_authorized"), InvitesNotConfigured),
        (
            AuthApiError("Unable to validate email address: invalid format", 400, "validation_failed"),
            InvalidClientEmail,
        ),
        (AuthApiError("Email address is invalid", 400, "email_address_invalid"), InvalidClientEmail),
        (AuthApiError("Bad JSON", 400, "bad_json"), AuthAdminError),
    ],
)
def test_each_refusal_maps_to_what_it_means_here(error: AuthError, mapped: type[Exception]) -> None:
    assert type(_mapped("create_user", error)) is mapped
