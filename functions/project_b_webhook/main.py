"""project_b_webhook: Project B's database webhook; syncs the changed client into Project A."""

from __future__ import annotations

from typing import Any

from shared.auth import verify_webhook_secret
from shared.config import get_settings
from shared.http import (
    HttpRequest,
    HttpResponse,
    answer_flask,
    answer_lambda,
    functions_framework_http,
    parse_body,
    require_json_post,
)
from shared.models import WebhookEvent
from shared.wiring import sync_service


def handle(request: HttpRequest) -> HttpResponse:
    settings = get_settings()
    require_json_post(request, settings.webhook_max_body_bytes)
    verify_webhook_secret(request.headers.get("authorization"), settings)
    event = parse_body(request, WebhookEvent)
    result = sync_service().handle_webhook_event(event)
    if result.applied is None:
        return HttpResponse(202, {"queued": True})
    return HttpResponse(200, {"outcome": result.applied.outcome, "client_id": str(result.applied.client_id)})


@functions_framework_http
def project_b_webhook(request: Any) -> tuple[str, int, dict[str, str]]:
    return answer_flask("project_b_webhook", request, handle, lambda: get_settings().webhook_max_body_bytes)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return answer_lambda("project_b_webhook", event, handle)
