"""Verifies Project A access tokens locally: HS256 with the JWT secret, or the project's JWKS keys; and Project B's
webhook secret. PyJWT (and cryptography under it, a good part of a cold start) is imported on the first token,
so the webhook, which checks a secret only, never loads it."""

from __future__ import annotations

import hmac
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import SecretStr

from shared.config import Settings
from shared.errors import Unauthorized, UpstreamUnavailable
from shared.models import Therapist

if TYPE_CHECKING:
    from jwt import PyJWKClient

_ASYMMETRIC_ALGORITHMS = ("RS256", "ES256", "EdDSA")


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> PyJWKClient:
    import jwt

    return jwt.PyJWKClient(url, cache_keys=True, lifespan=600, timeout=5)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    if not authorization:
        raise Unauthorized("Missing Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return token.strip()


def _signing_key(token: str, header: dict[str, Any], settings: Settings) -> tuple[Any, list[str]]:
    import jwt

    algorithm = header.get("alg")
    if algorithm == "HS256":
        secret = settings.project_a_jwt_secret.get_secret_value() if settings.project_a_jwt_secret else ""
        if not secret:
            raise Unauthorized("HS256 tokens are not accepted here")
        return secret, ["HS256"]
    if algorithm in _ASYMMETRIC_ALGORITHMS:
        if not settings.project_a_jwks_url:
            raise Unauthorized("Asymmetric tokens are not accepted here")
        try:
            key = _jwks_client(settings.project_a_jwks_url).get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            # Project A's key endpoint is down or unreachable: the token may well be valid, so a 503
            # (retry later), not a 401 (sign in again).
            raise UpstreamUnavailable("Project A's signing keys could not be fetched; try again shortly") from exc
        except jwt.PyJWKClientError as exc:
            raise Unauthorized("Unknown signing key") from exc
        return key, [algorithm]
    raise Unauthorized("Unsupported token algorithm")


def _decode(token: str, settings: Settings, *, user: bool) -> dict[str, Any]:
    """The claims of a token signed by Project A's keys: a signed-in user's (`user`: audience, issuer and subject
    checked too), or any (signature and expiry only)."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("Malformed token") from exc
    key, algorithms = _signing_key(token, header, settings)
    checks: dict[str, Any] = {"options": {"require": ["exp"], "verify_aud": False, "verify_iss": False}}
    if user:
        checks = {"audience": settings.jwt_audience, "issuer": settings.jwt_issuer}
        checks["options"] = {"require": ["exp", "sub", "aud"]}
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=algorithms, leeway=settings.jwt_leeway_seconds, **checks
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise Unauthorized("Token is for another audience") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid token") from exc
    return claims


def verify_access_token(authorization: str | None, settings: Settings) -> Therapist:
    """The therapist of a valid Project A access token of a signed-in user; Unauthorized for anything else
    (UpstreamUnavailable when Project A's signing keys cannot be fetched)."""
    token = bearer_token(authorization)
    return _therapist(_decode(token, settings, user=True), token)


def _therapist(claims: dict[str, Any], token: str) -> Therapist:
    # Supabase signs tokens of the anon and service_role keys, and of anonymous sign-ins, with the same
    # keys: only a signed-in user's token (role "authenticated", not anonymous) identifies a therapist.
    if claims.get("role") != "authenticated":
        raise Unauthorized("Token is not a signed-in user's")
    if claims.get("is_anonymous", False) is not False:
        raise Unauthorized("Anonymous users cannot book sessions")
    try:
        therapist_id = UUID(str(claims["sub"]))
    except ValueError as exc:
        raise Unauthorized("Token subject is not a user id") from exc
    return Therapist(id=therapist_id, claims=claims, access_token=SecretStr(token))


class ServiceRole:
    """The caller of a token of Project A's service role (its service_role key): an operator or a job."""


def verify_caller(authorization: str | None, settings: Settings) -> Therapist | ServiceRole:
    """sync_client's caller: a signed-in user's token (verified as verify_access_token does), or a service_role
    token signed with the same keys. Supabase's service_role key carries no audience, subject or the auth
    issuer, so only its signature, expiry and role are checked."""
    import jwt

    token = bearer_token(authorization)
    try:  # which checks apply; the token is then verified once, with them
        role = jwt.decode(token, options={"verify_signature": False}).get("role")
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("Malformed token") from exc
    if role == "service_role":
        _decode(token, settings, user=False)
        return ServiceRole()
    return _therapist(_decode(token, settings, user=True), token)


def verify_webhook_secret(authorization: str | None, settings: Settings) -> None:
    """Project B's webhook presents `Authorization: Bearer <PROJECT_B_WEBHOOK_SECRET>`."""
    if settings.project_b_webhook_secret is None:
        raise Unauthorized("The webhook secret is not configured")
    presented = bearer_token(authorization)
    if not secrets_match(presented, settings.project_b_webhook_secret.get_secret_value()):
        raise Unauthorized("Wrong webhook secret")


def secrets_match(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented secret with the expected one."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
