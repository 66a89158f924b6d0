"""The kinds of Lambda event a function takes (API Gateway HTTP API requests, SQS batches, EventBridge scheduled
events): telling them apart, and `dispatch` for a handler that takes several kinds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import ValidationError

from shared.errors import EventKindNotHandled, InvalidEvent
from shared.http import error_response, to_lambda
from shared.logs import log_event

EventKind = Literal["http", "sqs", "schedule"]
LambdaHandler = Callable[[Mapping[str, Any]], dict[str, Any]]

_KIND_NAMES: dict[EventKind, str] = {
    "http": "HTTP requests",
    "sqs": "SQS batches",
    "schedule": "scheduled events",
}


def event_kind(event: object) -> EventKind:
    """Which of the three kinds `event` is; InvalidEvent when it is none of them, or looks like several.

    - `http`: API Gateway HTTP API (or function URL) payload 2.0: `version` "2.0" and `requestContext.http.method`.
    - `sqs`: a non-empty `Records` list whose every item has `eventSource` "aws:sqs".
    - `schedule`: `source` "aws.events" and `detail-type` "Scheduled Event" (an EventBridge rule's schedule).
    """
    if not isinstance(event, Mapping):
        raise InvalidEvent("The Lambda event is not a JSON object")
    claims: list[EventKind] = []
    if "requestContext" in event:
        claims.append("http")
    if "Records" in event:
        claims.append("sqs")
    if "detail-type" in event or "source" in event:
        claims.append("schedule")
    if not claims:
        raise InvalidEvent(
            "The Lambda event is neither an API Gateway HTTP API request, an SQS batch nor an EventBridge "
            "scheduled event (no requestContext, Records or detail-type)"
        )
    if len(claims) > 1:
        raise InvalidEvent(f"The Lambda event has the keys of several kinds ({', '.join(claims)})")
    kind = claims[0]
    _CHECKS[kind](event)
    return kind


def _check_http(event: Mapping[str, Any]) -> None:
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, Mapping) else None
    if event.get("version") != "2.0" or not isinstance(http, Mapping) or not isinstance(http.get("method"), str):
        raise InvalidEvent(
            "The Lambda event has a requestContext but is not an API Gateway HTTP API payload 2.0 "
            "(version 2.0 with requestContext.http.method)"
        )


def _check_sqs(event: Mapping[str, Any]) -> None:
    records = event.get("Records")
    if not isinstance(records, list):
        raise InvalidEvent("The Lambda event's Records is not a list")
    if not records:
        raise InvalidEvent("The Lambda event's Records is empty (Lambda never sends an empty SQS batch)")
    for index, record in enumerate(records):
        if not isinstance(record, Mapping) or record.get("eventSource") != "aws:sqs":
            raise InvalidEvent(f"Records.{index} is not an SQS record (eventSource aws:sqs)")


def _check_schedule(event: Mapping[str, Any]) -> None:
    if event.get("source") != "aws.events" or event.get("detail-type") != "Scheduled Event":
        raise InvalidEvent(
            "The Lambda event is an EventBridge event but not a scheduled one "
            "(source aws.events, detail-type Scheduled Event)"
        )


_CHECKS: dict[EventKind, Callable[[Mapping[str, Any]], None]] = {
    "http": _check_http,
    "sqs": _check_sqs,
    "schedule": _check_schedule,
}


def require_kind(event: Mapping[str, Any], kind: EventKind) -> None:
    found = event_kind(event)
    if found != kind:
        raise InvalidEvent(f"Expected {_KIND_NAMES[kind]}, got one of the {_KIND_NAMES[found]}")


def describe_errors(exc: ValidationError) -> str:
    """Where and which kind of error, never the input: a pydantic message can quote it."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "event"
        parts.append(f"{where} ({error['type']})")
    return "; ".join(parts)


def dispatch(
    event: Mapping[str, Any],
    *,
    http: LambdaHandler | None = None,
    sqs: LambdaHandler | None = None,
    schedule: LambdaHandler | None = None,
    function: str | None = None,
) -> dict[str, Any]:
    """Hand `event` to the handler of its kind. An unknown or malformed event raises InvalidEvent; a kind without
    a handler is a JSON 404 for an HTTP request, and raises EventKindNotHandled for the others."""
    kind = event_kind(event)
    handler = {"http": http, "sqs": sqs, "schedule": schedule}[kind]
    if handler is not None:
        return handler(event)
    exc = EventKindNotHandled(f"This function does not take {_KIND_NAMES[kind]}", kind=kind)
    if kind != "http":
        raise exc
    log_event("request_refused", function=function, status=exc.status, error_code=exc.code)
    # retry_after_seconds only matters for a 503; reading the settings here could fail on their own account.
    return to_lambda(error_response(exc, retry_after_seconds=0))
