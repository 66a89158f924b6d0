"""create_session: book a session, copying the client from Project B first when Project A lacks it."""

from __future__ import annotations

from typing import Any

from shared.auth import verify_access_token
from shared.config import get_settings
from shared.errors import InvalidRequest
from shared.http import (
    HttpRequest,
    HttpResponse,
    answer_flask,
    answer_lambda,
    functions_framework_http,
    parse_body,
    require_json_post,
)
from shared.models import CreateSessionRequest, IdempotencyKeyHeader
from shared.wiring import booking_service


def handle(request: HttpRequest) -> HttpResponse:
    settings = get_settings()
    require_json_post(request, settings.max_body_bytes)
    therapist = verify_access_token(request.headers.get("authorization"), settings)
    body = parse_body(request, CreateSessionRequest)
    idempotency_key = _idempotency_key(request.headers.get("idempotency-key"))
    created = booking_service().create_session(therapist, body, idempotency_key)
    return HttpResponse(
        201,
        {"session": created.session.model_dump(mode="json"), "client_synced": created.client_synced},
        {"Idempotent-Replayed": "true"} if created.replayed else {},
    )


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return IdempotencyKeyHeader.validate_python(value)
    except ValueError:
        raise InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters", fields=["Idempotency-Key"]
        ) from None


@functions_framework_http
def create_session(request: Any) -> tuple[str, int, dict[str, str]]:
    return answer_flask("create_session", request, handle, lambda: get_settings().max_body_bytes)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return answer_lambda("create_session", event, handle)
