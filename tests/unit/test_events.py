"""The Lambda event adapters of shared/events/: kinds, SQS partial batch responses, scheduled events, dispatch."""

from __future__ import annotations

import copy
import json
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from shared.errors import EventKindNotHandled, InvalidEvent, InvalidMessage, UpstreamUnavailable
from shared.events.kinds import dispatch, event_kind
from shared.events.schedule import ScheduledEvent, parse_schedule
from shared.events.sqs import SqsRecord, parse_message, parse_sqs_batch, process_sqs_batch
from shared.models import QUEUE_MESSAGE, BackfillRange, QueuedSync

EVENTS = Path(__file__).resolve().parents[1] / "events"
SECRET = "jane.doe@example.com"  # stands for patient data in a body: it must never reach a log or an error


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def sqs_event(*bodies: str, groups: list[str] | None = None) -> dict[str, Any]:
    """An SQS batch of tests/events/sqs_batch.json's first record, once per body (ids m0, m1, ...)."""
    template = load("sqs_batch")["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"], record["body"] = f"m{index}", body
        if groups is not None:
            record["attributes"]["MessageGroupId"] = groups[index]
        records.append(record)
    return {"Records": records}


def queued(client_id: str = "00000000-0000-4000-8000-000000000001") -> str:
    return json.dumps({"client_id": client_id, "table": "public.profiles", "type": "UPDATE"})


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, str]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


# --- kinds ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [("create_session", "http"), ("project_b_webhook", "http"), ("sqs_batch", "sqs"), ("schedule", "schedule")],
)
def test_the_event_files_are_told_apart(name: str, kind: str) -> None:
    assert event_kind(load(name)) == kind


def _with(name: str, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    event = load(name)
    change(event)
    return event


EC2_STATE_CHANGE = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2026-11-25T10:00:00Z",
    "region": "eu-west-1",
    "resources": ["arn:aws:ec2:eu-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"},
}


@pytest.mark.parametrize(
    ("event", "says"),
    [
        (["not", "an", "object"], "not a JSON object"),
        ("Records", "not a JSON object"),
        ({}, "neither"),
        ({"awslogs": {"data": "H4sI"}}, "neither"),
        ({**load("sqs_batch"), "requestContext": {"http": {"method": "POST"}}}, "several kinds (http, sqs)"),
        ({**load("schedule"), "Records": []}, "several kinds (sqs, schedule)"),
        # API Gateway REST (payload 1.0) and ALB events have a requestContext, but not the 2.0 shape.
        ({"httpMethod": "POST", "requestContext": {"httpMethod": "POST"}, "body": "{}"}, "payload 2.0"),
        (_with("create_session", lambda e: e.update(version="1.0")), "payload 2.0"),
        (_with("create_session", lambda e: e["requestContext"].pop("http")), "payload 2.0"),
        (_with("create_session", lambda e: e["requestContext"]["http"].update(method=None)), "payload 2.0"),
        ({"Records": "m0"}, "not a list"),
        ({"Records": []}, "empty"),
        ({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]}, "Records.0 is not an SQS record"),
        ({"Records": [*load("sqs_batch")["Records"], {"eventSource": "aws:s3"}]}, "Records.2 is not an SQS"),
        ({"Records": ["m0"]}, "Records.0 is not an SQS record"),
        (EC2_STATE_CHANGE, "not a scheduled one"),
        (_with("schedule", lambda e: e.update(source="aws.scheduler")), "not a scheduled one"),
        (_with("schedule", lambda e: e.update({"detail-type": "Object Created"})), "not a scheduled one"),
    ],
)
def test_unknown_and_malformed_events_are_refused(event: Any, says: str) -> None:
    with pytest.raises(InvalidEvent) as raised:
        event_kind(event)
    assert says in raised.value.message


# --- SQS -----------------------------------------------------------------------------------------------------


def test_the_sqs_batch_file_parses_in_order_into_its_two_messages() -> None:
    records = parse_sqs_batch(load("sqs_batch"))
    assert [record.message_id for record in records] == [r["messageId"] for r in load("sqs_batch")["Records"]]
    retry, backfill = records
    assert retry.attributes.approximate_receive_count == 2
    assert retry.attributes.message_group_id is None
    assert retry.attribute("source") == "project_b_webhook"
    assert retry.attribute("reason") == "upstream_unavailable"
    assert backfill.attribute("source") is None
    assert parse_message(retry, QueuedSync) == QueuedSync(
        client_id=UUID("00000000-0000-4000-8000-000000000000"), table="public.profiles", type="UPDATE"
    )
    assert parse_message(backfill, QUEUE_MESSAGE) == BackfillRange(
        kind="backfill_range",
        start=UUID("00000000-0000-0000-0000-000000000000"),
        end=UUID("7fffffff-ffff-ffff-ffff-ffffffffffff"),
        cursor=None,
    )
    assert isinstance(parse_message(retry, QUEUE_MESSAGE), QueuedSync)


def test_a_poisoned_record_alone_is_reported_and_the_others_are_handled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handled: list[QueuedSync] = []
    event = sqs_event(queued(), '{"client_id": "' + SECRET, queued("00000000-0000-4000-8000-000000000002"))

    response = process_sqs_batch(
        event, lambda record: handled.append(parse_message(record, QueuedSync)), function="sync_client"
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert [str(message.client_id)[-1] for message in handled] == ["1", "2"]
    (line,) = log_lines(capsys)
    assert line == {
        "level": "warning",
        "event": "invalid_message",
        "function": "sync_client",
        "message_id": "m1",
        "attempt": "2",
        "error_code": "invalid_message",
        "error_type": "InvalidMessage",
    }


def test_records_are_handled_in_order_and_each_exception_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []

    def handle(record: SqsRecord) -> None:
        seen.append(record.message_id)
        if record.message_id == "m1":
            raise RuntimeError(f"cannot sync {SECRET}")
        if record.message_id == "m3":
            raise UpstreamUnavailable(f"Project A is down while syncing {SECRET}")

    response = process_sqs_batch(sqs_event(*[queued()] * 5), handle)

    assert seen == ["m0", "m1", "m2", "m3", "m4"]
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m3"}]}
    failed, unavailable = log_lines(capsys)
    assert failed == {
        "level": "error",
        "event": "sqs_record_failed",
        "message_id": "m1",
        "attempt": "2",
        "error_type": "RuntimeError",
    }
    assert unavailable == {
        "level": "warning",
        "event": "sqs_record_failed",
        "message_id": "m3",
        "attempt": "2",
        "error_code": "upstream_unavailable",
        "error_type": "UpstreamUnavailable",
    }


def test_nothing_of_a_body_or_an_error_text_reaches_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    bodies = [
        "not json " + SECRET,
        json.dumps({"client_id": SECRET, "table": "public.profiles", "type": "UPDATE"}),
        json.dumps({"client_id": "00000000-0000-4000-8000-000000000001", "table": "t", "type": "UPDATE", SECRET: 1}),
        queued() + "\u0000" + SECRET,
        json.dumps({"note": SECRET}),
    ]

    def handle(record: SqsRecord) -> None:
        message = parse_message(record, QueuedSync)
        raise ValueError(f"{message} {record.body}")

    response = process_sqs_batch(sqs_event(*bodies), handle)

    assert len(response["batchItemFailures"]) == len(bodies)
    output = capsys.readouterr().out
    assert output.count("\n") == len(bodies)
    assert "jane" not in output
    assert "example.com" not in output


def test_an_invalid_message_says_what_is_wrong_but_quotes_nothing_of_the_body() -> None:
    (not_json, wrong_type, unknown_field, nul, other_kind) = parse_sqs_batch(
        sqs_event(
            "{" + SECRET,
            json.dumps({"client_id": SECRET, "table": "public.profiles", "type": "UPDATE"}),
            json.dumps(
                {"client_id": "00000000-0000-4000-8000-000000000001", "table": "t", "type": "UPDATE", SECRET: 1}
            ),
            '{"note": "\\u0000' + SECRET + '"}',
            json.dumps({"kind": "backfill_range", "start": SECRET}),
        )
    )
    expected = [
        (not_json, "is not valid JSON"),
        (wrong_type, "does not match QueuedSync (uuid_parsing)"),
        (unknown_field, "does not match QueuedSync (extra_forbidden)"),
        (nul, "NUL character"),
        (other_kind, "does not match the expected message"),
    ]
    for record, says in expected:
        with pytest.raises(InvalidMessage) as raised:
            parse_message(record, QUEUE_MESSAGE if record is other_kind else QueuedSync)
        assert says in str(raised.value)
        assert raised.value.message_id == record.message_id
        # Nor does its traceback: the ValidationError, which holds the input, is not chained.
        assert "jane" not in "".join(traceback.format_exception(raised.value))


def test_a_record_repr_leaves_out_the_body_and_message_attributes() -> None:
    record = parse_sqs_batch(sqs_event(json.dumps({"note": SECRET})))[0]
    assert "m0" in repr(record)
    assert "jane" not in repr(record)
    assert "project_b_webhook" not in repr(record)


def test_a_batch_where_all_succeed_reports_an_empty_list() -> None:
    assert process_sqs_batch(load("sqs_batch"), lambda record: None) == {"batchItemFailures": []}


def test_an_empty_batch_is_refused_before_anything_is_handled() -> None:
    handled: list[SqsRecord] = []
    with pytest.raises(InvalidEvent, match="empty"):
        process_sqs_batch({"Records": []}, handled.append)
    with pytest.raises(InvalidEvent, match="neither"):
        process_sqs_batch({}, handled.append)
    assert handled == []


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        target = record
        for parent in parents:
            target = target[parent]
        del target[key]

    return change


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (_drop("messageId"), "Records.1.messageId (missing)"),
        (lambda r: r.update(messageId=""), "Records.1.messageId (string_too_short)"),
        (_drop("body"), "Records.1.body (missing)"),
        (lambda r: r.update(body={"client_id": SECRET}), "Records.1.body (string_type)"),
        (_drop("attributes"), "Records.1.attributes (missing)"),
        (_drop("attributes.ApproximateReceiveCount"), "Records.1.attributes.ApproximateReceiveCount (missing)"),
        (lambda r: r["attributes"].update(ApproximateReceiveCount="0"), "ApproximateReceiveCount (greater_than_equal)"),
        (lambda r: r["attributes"].update(ApproximateReceiveCount=SECRET), "ApproximateReceiveCount (int_parsing)"),
        (lambda r: r.update(messageAttributes={"source": {"stringValue": SECRET}}), "source.dataType (missing)"),
    ],
)
def test_a_malformed_record_refuses_the_whole_batch_before_any_record_is_handled(
    change: Callable[[dict[str, Any]], object], where: str
) -> None:
    event = sqs_event(queued(), queued())
    change(event["Records"][1])
    handled: list[SqsRecord] = []
    with pytest.raises(InvalidEvent) as raised:
        process_sqs_batch(event, handled.append)
    assert handled == []
    assert where in raised.value.message
    assert "jane" not in "".join(traceback.format_exception(raised.value))


def test_the_record_model_takes_only_sqs_records() -> None:
    record = load("sqs_batch")["Records"][0]
    with pytest.raises(ValidationError):
        SqsRecord.model_validate({**record, "eventSource": "aws:sns"})


def test_on_a_fifo_queue_a_failed_group_is_not_handled_further_but_other_groups_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[str] = []

    def handle(record: SqsRecord) -> None:
        seen.append(record.message_id)
        if record.message_id == "m0":
            raise RuntimeError("first of group a fails")

    event = sqs_event(*[queued()] * 5, groups=["a", "b", "a", "b", "a"])
    response = process_sqs_batch(event, handle)

    assert seen == ["m0", "m1", "m3"]
    assert response == {"batchItemFailures": [{"itemIdentifier": m} for m in ("m0", "m2", "m4")]}
    events = [(line["event"], line["message_id"], line.get("error_code")) for line in log_lines(capsys)]
    assert events == [
        ("sqs_record_failed", "m0", None),
        ("sqs_record_skipped", "m2", "earlier_message_failed"),
        ("sqs_record_skipped", "m4", "earlier_message_failed"),
    ]


def test_on_a_standard_queue_every_record_is_handled_after_a_failure() -> None:
    seen: list[str] = []

    def handle(record: SqsRecord) -> None:
        seen.append(record.message_id)
        raise RuntimeError("every record fails")

    response = process_sqs_batch(sqs_event(*[queued()] * 3), handle)
    assert seen == ["m0", "m1", "m2"]
    assert [failure["itemIdentifier"] for failure in response["batchItemFailures"]] == seen


# --- schedule ------------------------------------------------------------------------------------------------


def test_the_scheduled_event_file_parses() -> None:
    scheduled = parse_schedule(load("schedule"))
    assert scheduled.id == "8d5a0c1e-3f4b-4a8e-9c27-5b1e6f0d2a94"
    assert scheduled.time == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    assert scheduled.time.utcoffset() is not None
    assert scheduled.resources == (
        "arn:aws:events:eu-west-1:123456789012:rule/client-sync-BackfillSchedule-1XQ8ZK3N5VB7P",
    )
    assert scheduled.rule_name == "client-sync-BackfillSchedule-1XQ8ZK3N5VB7P"
    assert scheduled.detail == {}


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:events:eu-west-1:123456789012:rule/nightly", "nightly"),
        ("arn:aws:events:eu-west-1:123456789012:rule/custom-bus/nightly", "nightly"),
        ("arn:aws:events:eu-west-1:123456789012:rule/", None),
        ("arn:aws:scheduler:eu-west-1:123456789012:schedule/default/nightly", None),
    ],
)
def test_the_rule_name_comes_from_the_rule_arn(arn: str, name: str | None) -> None:
    assert parse_schedule({**load("schedule"), "resources": [arn]}).rule_name == name


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"time": "2026-11-25T10:00:00"}, "time (timezone_aware)"),
        ({"time": SECRET}, "time (datetime_from_date_parsing)"),
        ({"resources": []}, "resources (too_short)"),
        ({"id": ""}, "id (string_too_short)"),
        ({"id": None}, "id (string_type)"),
    ],
)
def test_a_malformed_scheduled_event_is_refused(change: dict[str, Any], where: str) -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_schedule({**load("schedule"), **change})
    assert where in raised.value.message
    assert "jane" not in "".join(traceback.format_exception(raised.value))


def test_the_schedule_model_takes_only_scheduled_events() -> None:
    with pytest.raises(ValidationError):
        ScheduledEvent.model_validate({**load("schedule"), "source": "aws.ec2"})
    with pytest.raises(ValidationError):
        ScheduledEvent.model_validate({**load("schedule"), "detail-type": "EC2 Instance State-change Notification"})


def test_each_parser_refuses_the_other_kinds() -> None:
    with pytest.raises(InvalidEvent, match="Expected scheduled events, got one of the SQS batches"):
        parse_schedule(load("sqs_batch"))
    with pytest.raises(InvalidEvent, match="Expected SQS batches, got one of the HTTP requests"):
        parse_sqs_batch(load("create_session"))
    with pytest.raises(InvalidEvent, match="Expected SQS batches, got one of the scheduled events"):
        process_sqs_batch(load("schedule"), lambda record: None)


# --- dispatch ------------------------------------------------------------------------------------------------


def _answers(kind: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    return lambda event: {"handled_by": kind}


@pytest.mark.parametrize("name", ["create_session", "sqs_batch", "schedule"])
def test_dispatch_hands_each_kind_to_its_handler(name: str) -> None:
    answer = dispatch(load(name), http=_answers("http"), sqs=_answers("sqs"), schedule=_answers("schedule"))
    assert answer == {"handled_by": event_kind(load(name))}


def test_dispatch_answers_an_http_request_it_does_not_take_with_a_json_404(capsys: pytest.CaptureFixture[str]) -> None:
    response = dispatch(load("project_b_webhook"), sqs=_answers("sqs"), function="sync_client")
    assert response["statusCode"] == 404
    assert response["headers"]["Content-Type"] == "application/json"
    assert json.loads(response["body"]) == {
        "error": {"code": "not_found", "message": "This function does not take HTTP requests"}
    }
    assert log_lines(capsys) == [
        {
            "level": "info",
            "event": "request_refused",
            "function": "sync_client",
            "status": "404",
            "error_code": "not_found",
        }
    ]


@pytest.mark.parametrize(("name", "says"), [("sqs_batch", "SQS batches"), ("schedule", "scheduled events")])
def test_dispatch_raises_for_another_kind_it_does_not_take(name: str, says: str) -> None:
    with pytest.raises(EventKindNotHandled, match=f"does not take {says}"):
        dispatch(load(name), http=_answers("http"))


def test_dispatch_raises_for_an_unknown_event() -> None:
    with pytest.raises(InvalidEvent):
        dispatch(EC2_STATE_CHANGE, http=_answers("http"), sqs=_answers("sqs"), schedule=_answers("schedule"))
