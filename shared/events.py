"""Lambda event adapters beside the HTTP one: SQS batches (partial batch responses) and EventBridge scheduled
events, and `dispatch` for a handler that takes several kinds.

A function triggered by SQS must have `FunctionResponseTypes: [ReportBatchItemFailures]` on its event source
mapping; `process_sqs_batch` then returns only the failed records, and SQS deletes the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, overload

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared.errors import EventKindNotHandled, InvalidEvent, InvalidMessage, SyncError
from shared.http import contains_nul, error_response, to_lambda
from shared.logs import log_event

EventKind = Literal["http", "sqs", "schedule"]
LambdaHandler = Callable[[Mapping[str, Any]], dict[str, Any]]
BatchResponse = dict[str, list[dict[str, str]]]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_KIND_NAMES: dict[EventKind, str] = {
    "http": "HTTP requests",
    "sqs": "SQS batches",
    "schedule": "scheduled events",
}


# --- telling the kinds apart ---------------------------------------------------------------------------------


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


def _require_kind(event: Mapping[str, Any], kind: EventKind) -> None:
    found = event_kind(event)
    if found != kind:
        raise InvalidEvent(f"Expected {_KIND_NAMES[kind]}, got one of the {_KIND_NAMES[found]}")


def _describe(exc: ValidationError) -> str:
    """Where and which kind of error, never the input: a pydantic message can quote it."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "event"
        parts.append(f"{where} ({error['type']})")
    return "; ".join(parts)


# --- SQS -----------------------------------------------------------------------------------------------------


class SqsAttributes(BaseModel):
    """The system attributes Lambda passes with each message (the others are ignored)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    approximate_receive_count: int = Field(alias="ApproximateReceiveCount", ge=1)
    sent_timestamp: int | None = Field(default=None, alias="SentTimestamp")
    approximate_first_receive_timestamp: int | None = Field(default=None, alias="ApproximateFirstReceiveTimestamp")
    message_group_id: str | None = Field(default=None, alias="MessageGroupId")  # FIFO queues only
    message_deduplication_id: str | None = Field(default=None, alias="MessageDeduplicationId")
    sequence_number: str | None = Field(default=None, alias="SequenceNumber")


class SqsMessageAttribute(BaseModel):
    """A message attribute as Lambda spells it (camelCase; binary values base64)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    data_type: str = Field(alias="dataType")
    string_value: str | None = Field(default=None, alias="stringValue")
    binary_value: str | None = Field(default=None, alias="binaryValue")


class SqsRecord(BaseModel):
    """One message of an SQS batch. Its body and message attributes stay out of its repr: logging it leaks neither."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    message_id: str = Field(alias="messageId", min_length=1)
    receipt_handle: str | None = Field(default=None, alias="receiptHandle")
    body: str = Field(repr=False)
    attributes: SqsAttributes
    message_attributes: dict[str, SqsMessageAttribute] = Field(
        default_factory=dict, alias="messageAttributes", repr=False
    )
    md5_of_body: str | None = Field(default=None, alias="md5OfBody")
    event_source: Literal["aws:sqs"] = Field(alias="eventSource")
    event_source_arn: str | None = Field(default=None, alias="eventSourceARN")
    aws_region: str | None = Field(default=None, alias="awsRegion")

    def attribute(self, name: str) -> str | None:
        """The string value of message attribute `name`, if any."""
        value = self.message_attributes.get(name)
        return value.string_value if value is not None else None


class _SqsEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    records: list[SqsRecord] = Field(alias="Records")  # non-empty: event_kind checks it


def parse_sqs_batch(event: Mapping[str, Any]) -> list[SqsRecord]:
    """The records of an SQS batch event, in order; InvalidEvent for anything else or any malformed record."""
    _require_kind(event, "sqs")
    try:
        return _SqsEvent.model_validate(event).records
    except ValidationError as exc:
        raise InvalidEvent(f"Malformed SQS batch: {_describe(exc)}") from None


@overload
def parse_message(record: SqsRecord, model: type[M]) -> M: ...
@overload
def parse_message(record: SqsRecord, model: TypeAdapter[T]) -> T: ...
def parse_message(record: SqsRecord, model: type[BaseModel] | TypeAdapter[Any]) -> Any:
    """The record's body as `model` (a pydantic model or a TypeAdapter, e.g. of a union of message kinds).

    InvalidMessage when the body is not JSON, holds a NUL character, or does not match: `process_sqs_batch`
    reports the record as failed (SQS redelivers it, then moves it to the dead-letter queue) and logs
    `invalid_message` with its id only. The exception's text names error types, never a value of the body.
    """
    name = model.__name__ if isinstance(model, type) else "the expected message"
    if contains_nul(record.body.encode()):
        raise InvalidMessage("The message holds a NUL character", message_id=record.message_id)
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_json(record.body)
        return model.model_validate_json(record.body)
    except ValidationError as exc:
        types = sorted({error["type"] for error in exc.errors()})
        problem = "is not valid JSON" if "json_invalid" in types else f"does not match {name} ({', '.join(types)})"
        raise InvalidMessage(f"The message {problem}", message_id=record.message_id) from None


def process_sqs_batch(
    event: Mapping[str, Any], handle_record: Callable[[SqsRecord], object], *, function: str | None = None
) -> BatchResponse:
    """Call `handle_record` on each record, in order, each on its own; `{"batchItemFailures": [...]}` lists the
    records that raised (their `messageId`s, in order), and is empty when all succeeded.

    Every record is validated before any is handled: a malformed batch raises InvalidEvent and handles nothing.
    On a FIFO queue (records with a MessageGroupId), a record whose group had a failure earlier in this batch is
    not handled but reported failed too, so that SQS redelivers the group's messages in their order.
    A failure is logged with the message id, receive count and error type; never the body or the error's text.
    """
    records = parse_sqs_batch(event)
    failures: list[dict[str, str]] = []
    failed_groups: set[str] = set()
    for record in records:
        group = record.attributes.message_group_id
        if group in failed_groups:
            _log_record("sqs_record_skipped", logging.WARNING, function, record, error_code="earlier_message_failed")
            handled = False
        else:
            handled = _handle(record, handle_record, function)
        if not handled:
            failures.append({"itemIdentifier": record.message_id})
            if group is not None:
                failed_groups.add(group)
    return {"batchItemFailures": failures}


def _handle(record: SqsRecord, handle_record: Callable[[SqsRecord], object], function: str | None) -> bool:
    """Whether `handle_record` handled the record; a failure is logged, never raised."""
    try:
        handle_record(record)
    except InvalidMessage as exc:
        _log_record("invalid_message", logging.WARNING, function, record, error_code=exc.code, error_type=type(exc))
    except SyncError as exc:
        _log_record("sqs_record_failed", logging.WARNING, function, record, error_code=exc.code, error_type=type(exc))
    except Exception as exc:
        _log_record("sqs_record_failed", logging.ERROR, function, record, error_type=type(exc))
    else:
        return True
    return False


def _log_record(
    event: str,
    level: int,
    function: str | None,
    record: SqsRecord,
    *,
    error_code: str | None = None,
    error_type: type[BaseException] | None = None,
) -> None:
    log_event(
        event,
        level,
        function=function,
        message_id=record.message_id,
        attempt=record.attributes.approximate_receive_count,
        error_code=error_code,
        error_type=error_type.__name__ if error_type is not None else None,
    )


# --- EventBridge schedule ------------------------------------------------------------------------------------


class ScheduledEvent(BaseModel):
    """An EventBridge rule's scheduled event. `resources` holds the rule's ARN."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    version: str
    id: str = Field(min_length=1)
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    source: Literal["aws.events"]
    account: str
    time: AwareDatetime
    region: str
    resources: tuple[str, ...] = Field(min_length=1)
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def rule_name(self) -> str | None:
        """The name of the rule in `resources[0]` (`arn:aws:events:<region>:<account>:rule/<name>`), if it is one."""
        _, _, path = self.resources[0].partition(":rule/")
        return path.rsplit("/", 1)[-1] or None  # rule/<bus>/<name> on a custom bus


def parse_schedule(event: Mapping[str, Any]) -> ScheduledEvent:
    """The scheduled event; InvalidEvent for another kind, or one without an id, an aware time or a rule."""
    _require_kind(event, "schedule")
    try:
        return ScheduledEvent.model_validate(event)
    except ValidationError as exc:
        raise InvalidEvent(f"Malformed scheduled event: {_describe(exc)}") from None


# --- one entry for several kinds -----------------------------------------------------------------------------


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
