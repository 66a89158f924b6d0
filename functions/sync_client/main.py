"""sync_client: sync one client, or a page of a backfill or reconcile (HTTP); apply the queue's webhook retries
and backfill jobs (SQS); reconcile on a schedule (EventBridge)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from shared import metrics
from shared.auth import ServiceRole, verify_caller
from shared.config import get_settings
from shared.deadline import attempts_until
from shared.errors import Forbidden
from shared.events.kinds import dispatch
from shared.events.schedule import parse_schedule
from shared.events.sqs import SqsRecord, parse_message, process_sqs_batch
from shared.http import (
    HttpRequest,
    HttpResponse,
    answer_flask,
    answer_lambda,
    functions_framework_http,
    parse_body,
    require_json_post,
)
from shared.logs import log_event
from shared.models import (
    QUEUE_MESSAGE,
    BulkSyncRequest,
    InviteRequest,
    LinkRequest,
    LinkSuggestionsRequest,
    QueuedSync,
    RejectLinkRequest,
    StatusRequest,
    SyncOneRequest,
)
from shared.wiring import (
    backfill_service,
    invite_service,
    link_service,
    reconcile_service,
    status_service,
    sync_service,
)

FUNCTION = "sync_client"
# Left of a Lambda invocation's time when a job stops paging, for queueing its remainder and answering.
STOP_MARGIN_SECONDS = 5.0


def handle(request: HttpRequest) -> HttpResponse:
    settings = get_settings()
    require_json_post(request, settings.max_body_bytes)
    caller = verify_caller(request.headers.get("authorization"), settings)
    mode = _mode(request.body)
    if mode is None:
        one = parse_body(request, SyncOneRequest)
        if isinstance(caller, ServiceRole):
            applied = sync_service().sync_client(one.client_id)
        else:
            applied = sync_service().sync_client_for(caller, one.client_id)
        return HttpResponse(200, {"outcome": applied.outcome, "client_id": str(applied.client_id)})
    if mode == "status":
        parse_body(request, StatusRequest)
        if not isinstance(caller, ServiceRole):
            raise Forbidden("The status needs a service_role token")
        return HttpResponse(200, status_service().status())
    if mode == "invite":
        invite = parse_body(request, InviteRequest)
        invited = invite_service().invite(caller, invite.client_id)
        return HttpResponse(200, {"outcome": invited.outcome, "client_id": str(invited.client_id)})
    if mode == "links":
        parse_body(request, LinkSuggestionsRequest)
        suggestions = link_service().suggestions(caller)
        return HttpResponse(200, {"suggestions": [suggestion.as_json() for suggestion in suggestions]})
    if mode == "link":
        asked = parse_body(request, LinkRequest)
        linked = link_service().link(caller, asked.client_id, asked.project_b_user_id)
        return HttpResponse(200, {"outcome": "linked", "client_id": str(linked)})
    if mode == "reject_link":
        rejected = parse_body(request, RejectLinkRequest)
        link_service().reject(caller, rejected.client_id, rejected.project_b_user_id)
        return HttpResponse(200, {"outcome": "rejected"})
    bulk_request = parse_body(request, BulkSyncRequest)
    if not isinstance(caller, ServiceRole):
        raise Forbidden("Backfill and reconcile need a service_role token")
    if bulk_request.shards is not None:
        return HttpResponse(202, {"queued": backfill_service().queue_backfill(bulk_request.shards)})
    cursor, limit, dry_run = bulk_request.cursor, bulk_request.limit or settings.sync_page_size, bulk_request.dry_run
    if bulk_request.mode == "backfill":
        page = backfill_service().backfill_page(cursor, limit, dry_run=dry_run)
    else:
        page = reconcile_service().reconcile_page(cursor, limit, dry_run=dry_run, full=bulk_request.full)
    return HttpResponse(200, {"counts": page.applied.counts(), "next_cursor": page.next_cursor})


def _mode(body: bytes) -> object:
    """The body's `mode` (a bulk request, an invite or the links), or None: the body is parsed as one client."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # parse_body then answers 400 for it
        return None
    return parsed.get("mode") if isinstance(parsed, dict) else None


def handle_sqs(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The queue's messages: a webhook retry syncs its client; a backfill job pages through its range, and
    queues its remainder when its time is up; each job of a batch gets what is left of the invocation, and one
    that gets nothing goes back whole. A failed message is reported alone and comes back."""

    def apply(record: SqsRecord) -> None:
        message = parse_message(record, QUEUE_MESSAGE)
        if isinstance(message, QueuedSync):
            sync_service().sync_client(message.client_id)
            return
        backfill = backfill_service()
        if _invocation_time_left(context) <= 0:  # not even for a page
            backfill.requeue(message)
            return
        _, rest = backfill.run_range(message, _deadline(context))
        if rest is not None:
            backfill.requeue(rest)

    with metrics.invocation(FUNCTION), attempts_until(get_settings().job_deadline_seconds):
        return dict(process_sqs_batch(event, apply, function=FUNCTION))


def handle_schedule(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """One bounded reconcile; the next run goes on from the watermark it kept."""
    parse_schedule(event)
    with metrics.invocation(FUNCTION), attempts_until(get_settings().job_deadline_seconds):
        applied, cursor = reconcile_service().reconcile_until(_deadline(context))
        # What the lag alarm watches: 0 when it applied everything, else how long what it left has waited.
        metrics.put("LagSeconds", 0.0 if cursor is None else reconcile_service().waiting_seconds(), "Seconds")
    log_event("scheduled_reconcile_done", function=FUNCTION, **applied.counts())
    return {"counts": applied.counts(), "finished": cursor is None}


def _deadline(context: Any) -> float:
    budget = min(get_settings().job_budget_seconds, _invocation_time_left(context))
    return time.monotonic() + max(budget, 0.0)


def _invocation_time_left(context: Any) -> float:
    """Seconds left of the Lambda invocation, less the margin to answer in (without a Lambda context: no end)."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining_ms):
        return float(remaining_ms()) / 1000 - STOP_MARGIN_SECONDS
    return math.inf


@functions_framework_http
def sync_client(request: Any) -> tuple[str, int, dict[str, str]]:
    return answer_flask(FUNCTION, request, handle, lambda: get_settings().max_body_bytes)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch(
        event,
        http=lambda e: answer_lambda(FUNCTION, e, handle),
        sqs=lambda e: handle_sqs(e, context),
        schedule=lambda e: handle_schedule(e, context),
        function=FUNCTION,
    )
