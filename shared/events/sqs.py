"""SQS batches: their records parsed, each record's message parsed, and the batch processed with a partial batch
response.

A function triggered by SQS must have `FunctionResponseTypes: [ReportBatchItemFailures]` on its event source
mapping; `process_sqs_batch` then returns only the failed records, and SQS deletes the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from shared import metrics
from shared.errors import ApiError, InvalidEvent, InvalidMessage
from shared.events.kinds import describe_errors, require_kind
from shared.http import contains_nul
from shared.logs import log_event

BatchResponse = dict[str, list[dict[str, str]]]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


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
    require_kind(event, "sqs")
    try:
        return _SqsEvent.model_validate(event).records
    except ValidationError as exc:
        raise InvalidEvent(f"Malformed SQS batch: {describe_errors(exc)}") from None


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
    metrics.add("FailedRecords", len(failures))
    return {"batchItemFailures": failures}


def _handle(record: SqsRecord, handle_record: Callable[[SqsRecord], object], function: str | None) -> bool:
    """Whether `handle_record` handled the record; a failure is logged, never raised."""
    try:
        handle_record(record)
    except InvalidMessage as exc:
        _log_record("invalid_message", logging.WARNING, function, record, error_code=exc.code, error_type=type(exc))
    except ApiError as exc:
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
