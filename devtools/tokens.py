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
