"""The floor of a booking under functions-framework, for bench/create_session.py: what create_session cannot do
without, and nothing else. The request is checked, the token verified and the body parsed as create_session and the
baseline do them, then one round trip to Project A (`select 1` on a pooled connection, as client_sync) and a 201 of
the booking's shape. Nothing is booked: its SQL's own time is what this leaves out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import functions_framework

from shared.auth import verify_access_token
from shared.config import get_settings
from shared.http import HttpRequest, HttpResponse, answer_flask, parse_body, require_json_post
from shared.models import CreateSessionRequest
from shared.stores.pools import get_pool, pooled_connection


def handle(request: HttpRequest) -> HttpResponse:
    settings = get_settings()
    require_json_post(request, settings.max_body_bytes)
    therapist = verify_access_token(request.headers.get("authorization"), settings)
    body = parse_body(request, CreateSessionRequest)
    assert settings.project_a_db_url is not None, "PROJECT_A_DB_URL is not set"
    with pooled_connection(get_pool("project_a", settings.project_a_db_url.get_secret_value(), settings)) as conn:
        conn.execute("select 1").fetchone()
    session = {
        "id": str(uuid4()),
        "client_id": str(body.client_id),
        "therapist_id": str(therapist.id),
        "starts_at": body.starts_at.isoformat(),
        "duration_minutes": body.duration_minutes,
        "status": "scheduled",
        "notes": body.notes,
        "created_at": datetime.now(UTC).isoformat(),
    }
    return HttpResponse(201, {"session": session, "client_synced": False})


@functions_framework.http
def create_session(request: Any) -> tuple[str, int, dict[str, str]]:
    return answer_flask("create_session", request, handle, lambda: get_settings().max_body_bytes)
