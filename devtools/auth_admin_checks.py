"""The Auth stand-in's checks before a call, as GoTrue's middleware makes them (requireAdminCredentials: a bearer
JWT of the project, with an admin role), and its error answers (HandleResponseError, in the API version the request
asks for). Sources in devtools/auth_admin.py: GoTrue's internal/api/auth.go, middleware.go, errors.go,
apiversions.go and utilities/postgres.go (NewPostgresError), and golang-jwt v5's error texts."""

from __future__ import annotations

import re
import time
import uuid
from contextlib import suppress
from typing import Any

import jwt
from jwt.types import Options

from devtools.auth_admin_users import AuthError

ADMIN_ROLES = ("service_role", "supabase_admin")
API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION_2024_01_01 = "2024-01-01"
_BEARER = re.compile(r"bearer (\S+)", re.IGNORECASE)
# The claims GoTrue decodes into typed fields (AccessTokenClaims): another type makes the token malformed.
_CLAIM_TYPES: dict[str, type | tuple[type, ...]] = {
    **dict.fromkeys(("iss", "sub", "jti", "email", "phone", "role", "aal", "session_id", "client_id", "scope"), str),
    **dict.fromkeys(("exp", "nbf", "iat"), (int, float)),
    **dict.fromkeys(("app_metadata", "user_metadata"), dict),
    "is_anonymous": bool,
}
# What GoTrue's utilities.NewPostgresError shows of a database error (HTTP status by SQLSTATE).
_PUBLIC_SQLSTATES = {"P0001", "23000", "23001", "23502", "23503", "23505", "23514", "23P01"}


def api_version(headers: dict[str, str]) -> str | None:
    """apiversions.go's DetermineClosestAPIVersion: 2024-01-01 for a date from then on, else the initial one."""
    value = headers.get(API_VERSION_HEADER.lower(), "")
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return None
    with suppress(ValueError):
        time.strptime(value, "%Y-%m-%d")
        return API_VERSION_2024_01_01 if value >= API_VERSION_2024_01_01 else None
    return None


def _bad_jwt(reason: str) -> AuthError:
    return AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {reason}")


def jwt_claims(token: str, secret: str) -> dict[str, Any]:
    """parseJWTClaims: the claims of a token signed with `secret`, checked as golang-jwt v5 checks them."""
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
        if algorithm != "HS256":
            raise _bad_jwt(f"token signature is invalid: signing method {algorithm} is invalid")
        options: Options = {"verify_aud": False, "verify_iss": False, "verify_iat": False, "require": []}
        claims = jwt.decode(token, secret, algorithms=["HS256"], options=options)
    except jwt.ExpiredSignatureError:
        raise _bad_jwt("token has invalid claims: token is expired") from None
    except jwt.ImmatureSignatureError:
        raise _bad_jwt("token has invalid claims: token is not valid yet") from None
    except jwt.InvalidSignatureError:
        raise _bad_jwt("token signature is invalid: signature is invalid") from None
    except jwt.InvalidTokenError:
        segments = "token contains an invalid number of segments" if token.count(".") != 2 else "could not decode"
        raise _bad_jwt(f"token is malformed: {segments}") from None
    for name, kind in _CLAIM_TYPES.items():
        value = claims.get(name)
        if value is not None and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
            raise _bad_jwt("token is malformed: could not JSON decode claim")
    return claims


def require_admin(headers: dict[str, str], secret: str) -> None:
    """requireAdminCredentials: a bearer JWT of the project with an admin role."""
    match = _BEARER.fullmatch(headers.get("authorization", ""))
    if match is None:
        raise AuthError(401, "no_authorization", "This endpoint requires a valid Bearer token")
    if jwt_claims(match.group(1), secret).get("role") not in ADMIN_ROLES:
        raise AuthError(403, "not_admin", "User not allowed")


def error_answer(error: AuthError, version: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """HandleResponseError: the status, body and headers of `error`'s answer, in the requested API version."""
    headers = {"x-sb-error-code": error.code}
    if version is not None:
        return error.status, {"code": error.code, "message": error.message}, headers | {API_VERSION_HEADER: version}
    cause = error.cause
    if cause is not None and cause.sqlstate in _PUBLIC_SQLSTATES:
        body = {"code": cause.sqlstate, "message": cause.diag.message_primary}
        body |= {
            key: value
            for key, value in (("hint", cause.diag.message_hint), ("detail", cause.diag.message_detail))
            if value
        }
        return 500, body, headers
    legacy: dict[str, Any] = {"code": error.status, "error_code": error.code, "msg": error.message}
    if error.status >= 500:
        legacy["error_id"] = str(uuid.uuid4())  # GoTrue's request id
    return error.status, legacy, headers
