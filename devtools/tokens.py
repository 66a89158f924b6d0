"""Signs Project A access tokens the way Supabase Auth does, for the dev stack, tests and benchmarks."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt


def sign_access_token(
    secret: str,
    therapist_id: uuid.UUID | str,
    *,
    expires_in: int = 3600,
    audience: str = "authenticated",
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
    **extra: Any,
) -> str:
    now = int(time.time())
    claims = {
        "sub": str(therapist_id),
        "aud": audience,
        "role": "authenticated",
        "iat": now,
        "exp": now + expires_in,
        **extra,
    }
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers)


def sign_service_role_token(secret: str, *, expires_in: int = 3600) -> str:
    """A token like Project A's service_role key (role service_role, no subject or audience)."""
    now = int(time.time())
    return jwt.encode({"iss": "supabase", "role": "service_role", "iat": now, "exp": now + expires_in}, secret)


def sign_anon_token(secret: str, *, expires_in: int = 3600) -> str:
    """A token like a project's anon key (role anon, no subject or audience)."""
    now = int(time.time())
    return jwt.encode({"iss": "supabase", "role": "anon", "iat": now, "exp": now + expires_in}, secret)


def client_backend_settings(project: str, url: str, jwt_secret: str, *, expires_in: int) -> dict[str, str]:
    """The settings that put `project` on the client backend: its API's URL, a service-role key signed with its
    JWT secret, and PROJECT_X_BACKEND=client."""
    prefix = project.upper()
    return {
        f"{prefix}_URL": url,
        f"{prefix}_SERVICE_ROLE_KEY": sign_service_role_token(jwt_secret, expires_in=expires_in),
        f"{prefix}_BACKEND": "client",
    }
