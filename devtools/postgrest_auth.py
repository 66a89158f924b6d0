"""The stand-in's checks before a call (devtools/postgrest.py): Supabase's API gateway's `apikey`, then PostgREST's
JWT, which gives the call its role and claims. Sources as in devtools/postgrest.py: PostgREST's Auth/Jwt.hs and
Error.hs, and the gateway's kong.yml. The Auth stand-in (devtools/auth_admin.py) uses the gateway's check."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt

from devtools.postgrest_rpc import ApiError

API_KEY_ROLES = ("anon", "service_role")
ANON_ROLE = "anon"


class GatewayError(Exception):
    """An answer of the API gateway, before PostgREST sees the request (Kong's {message, hint} body)."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message} | ({"hint": hint} if hint else {})


def _jwt_error(code: str, message: str) -> ApiError:
    header = f'Bearer error="invalid_token", error_description="{message}"'
    return ApiError(401, code, message, headers={"WWW-Authenticate": header})


# PostgREST caches the claims of tokens it has verified (jwt-cache-max-lifetime), and the gateway its API keys;
# a cached token is still refused once expired.
_VERIFIED: dict[tuple[str, str], dict[str, Any]] = {}
_VERIFIED_MAX = 10_000


def verify_jwt(token: str, secret: str) -> dict[str, Any]:
    """`token`'s claims, from the cache while it has not expired, else checked by check_jwt."""
    cached = _VERIFIED.get((token, secret))
    expires = cached.get("exp") if cached is not None else None
    if cached is not None and (not isinstance(expires, int | float) or time.time() < expires + 30):
        return cached
    claims = check_jwt(token, secret)
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[(token, secret)] = claims
    return claims


def check_jwt(token: str, secret: str) -> dict[str, Any]:
    """The claims of `token`, checked as PostgREST checks them (signature HS256, exp/nbf/iat with 30 s leeway)."""
    if not token:
        raise _jwt_error("PGRST301", "Empty JWT is sent in Authorization header")
    if (parts := len(token.split("."))) != 3:
        raise _jwt_error("PGRST301", f"Expected 3 parts in JWT; got {parts}")
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], leeway=30, options={"verify_aud": False, "require": []}
        )
    except jwt.ExpiredSignatureError:
        raise _jwt_error("PGRST303", "JWT expired") from None
    except jwt.ImmatureSignatureError as exc:
        message = "JWT issued at future" if "iat" in str(exc) else "JWT not yet valid"
        raise _jwt_error("PGRST303", message) from None
    except jwt.InvalidAlgorithmError:
        raise _jwt_error("PGRST301", "Wrong or unsupported encoding algorithm") from None
    except jwt.InvalidSignatureError:
        raise _jwt_error("PGRST301", "JWT cryptographic operation failed") from None
    except jwt.DecodeError as exc:
        claim = next((name for name in ("exp", "nbf", "iat") if f"({name})" in str(exc)), None)
        if claim:
            raise _jwt_error("PGRST303", f"The JWT '{claim}' claim must be a number") from None
        raise _jwt_error("PGRST301", "JWT cryptographic operation failed") from None
    except jwt.InvalidTokenError:
        raise _jwt_error("PGRST303", "Parsing claims failed") from None
    if not isinstance(claims, dict):
        raise _jwt_error("PGRST303", "Parsing claims failed")
    return claims


def check_api_key(headers: dict[str, str], secret: str) -> dict[str, Any]:
    """The gateway's `apikey` check (before any of the project's services sees the request): the key's claims."""
    api_key = headers.get("apikey")
    if not api_key:
        raise GatewayError(401, "No API key found in request", "No `apikey` request header or url param was found.")
    try:
        key_claims = verify_jwt(api_key, secret)
    except ApiError:
        key_claims = {}
    if not isinstance(key_claims, dict) or key_claims.get("role") not in API_KEY_ROLES:
        raise GatewayError(401, "Invalid API key", "Double check your Supabase `anon` or `service_role` API key.")
    return key_claims


def authenticate(headers: dict[str, str], secret: str) -> tuple[str, dict[str, Any]]:
    """The gateway's `apikey` check, then PostgREST's: the request's role and claims."""
    key_claims = check_api_key(headers, secret)
    authorization = headers.get("authorization")
    scheme, _, token = (authorization or "").partition(" ")
    claims = verify_jwt(token.strip(), secret) if scheme.lower() == "bearer" else key_claims
    role = claims.get("role", ANON_ROLE)
    return (role if isinstance(role, str) else json.dumps(role)), claims
