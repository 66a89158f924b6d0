"""sync_client's queue: a message that cannot be right is reported failed before any work, so it ends in the
dead-letter queue, and is logged by its message id alone."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import Databases
from tests.integration.helpers import EVENTS, function_module
from tests.random_refs import random_email, random_name

pytestmark = pytest.mark.usefixtures("backend")

_RETRY = {"table": "public.profiles", "type": "UPDATE"}
LOW, HIGH = uuid.UUID(int=1), uuid.UUID(int=2**128 - 2)


def backfill(start: uuid.UUID, end: uuid.UUID, cursor: uuid.UUID | None = None) -> dict[str, Any]:
    return {"kind": "backfill_range", "start": str(start), "end": str(end), "cursor": cursor and str(cursor)}


def bad_messages(client_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Each kind of message that must fail before any query, by message id; all name `client_id`."""
    around = uuid.UUID(int=client_id.int - 1), uuid.UUID(int=client_id.int + 1)
    return {
        "backwards": backfill(around[1], around[0]),
        "cursor-before-start": backfill(client_id, HIGH, cursor=around[0]),
        "cursor-after-end": backfill(LOW, client_id, cursor=around[1]),
        "unknown-kind": {**backfill(LOW, client_id), "kind": "backfill_everything"},
        "kind-on-a-retry": {"kind": "retry", "client_id": str(client_id), **_RETRY},
        "client-id-not-a-uuid": {"client_id": str(client_id.int), **_RETRY},
    }


def sqs_event(messages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A Lambda SQS batch shaped as tests/events/sqs_batch.json, one record per message, by message id."""
    template = json.loads((EVENTS / "sqs_batch.json").read_text())["Records"][0]
    return {"Records": [{**template, "messageId": mid, "body": json.dumps(body)} for mid, body in messages.items()]}


def handle(messages: dict[str, dict[str, Any]]) -> list[str]:
    """The ids sync_client's lambda_handler reports failed for a batch of `messages`."""
    answer = function_module("sync_client").lambda_handler(sqs_event(messages), None)
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def test_only_the_bad_messages_of_a_batch_fail_and_the_good_ones_are_applied(db: Databases) -> None:
    retried, ranged, named = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for client_id in (retried, ranged, named):
        db.add_project_b_client(client_id, random_name(), random_email())
    bad = bad_messages(named)
    batch = {
        "good-retry": {"client_id": str(retried), **_RETRY},
        **dict(list(bad.items())[:3]),
        "good-range": backfill(ranged, ranged),
        **dict(list(bad.items())[3:]),
    }

    assert handle(batch) == list(bad)
    assert db.client(retried) is not None and db.client(ranged) is not None
    assert db.client(named) is None  # every bad message names it, and none reached the database


@contextmanager
def counting_listener() -> Iterator[tuple[int, list[int]]]:
    """A TCP port on loopback that counts the connections made to it (each closed at once): no connection, no
    query. Yields the port and the count (a one-item list)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    accepted, stop = [0], threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted[0] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.fixture
def databases_that_count_connections(reconfigure: Callable[..., None]) -> Iterator[list[int]]:
    """Both projects' URLs pointed at a counting listener; yields how many connections the functions made."""
    with counting_listener() as (port, accepted):
        url = f"postgresql://client_sync@127.0.0.1:{port}/postgres?connect_timeout=1"
        reconfigure(PROJECT_A_DB_URL=url, PROJECT_B_DB_URL=url, DB_POOL_TIMEOUT_SECONDS="0.2", RETRY_ATTEMPTS="1")
        yield accepted


@pytest.mark.direct_only("counts the functions' database connections")
def test_a_bad_message_makes_no_connection_and_is_logged_by_its_id_alone(
    databases_that_count_connections: list[int], capsys: pytest.CaptureFixture[str]
) -> None:
    client_id = uuid.uuid4()
    bad = bad_messages(client_id)

    assert handle(bad) == list(bad)

    assert databases_that_count_connections == [0]
    everything = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    lines = [line for line in everything if line["event"] != "metrics"]  # the batch's counts, last (no ids)
    assert [(line["event"], line["message_id"]) for line in lines] == [("invalid_message", mid) for mid in bad]
    assert [line["FailedRecords"] for line in everything if line["event"] == "metrics"] == [len(bad)]
    logged = json.dumps(lines)
    assert str(client_id) not in logged and str(client_id.int) not in logged
    assert "backfill_everything" not in logged


@pytest.mark.direct_only("counts the functions' database connections")
def test_a_good_message_does_connect_to_the_counting_listener(databases_that_count_connections: list[int]) -> None:
    """The listener sees connections: the test above would notice a bad message reaching the database."""
    assert handle({"good": {"client_id": str(uuid.uuid4()), **_RETRY}}) == ["good"]
    assert databases_that_count_connections[0] >= 1


@pytest.mark.direct_only("counts the functions' database connections")
def test_bad_messages_end_in_the_dead_letter_queue(aws: Any, databases_that_count_connections: list[int]) -> None:
    """What Lambda's event source mapping does with the failures, on moto's SQS with the template's kind of
    redrive policy (a smaller maxReceiveCount): every bad message moves to the dead-letter queue."""
    dead = aws.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dead_arn = aws.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 2})
    url = aws.create_queue(
        QueueName=f"sync-{uuid.uuid4().hex[:8]}", Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "0"}
    )["QueueUrl"]
    bad = bad_messages(uuid.uuid4())
    for body in bad.values():
        aws.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    handler = function_module("sync_client").lambda_handler

    while messages := aws.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        event = sqs_event({m["MessageId"]: json.loads(m["Body"]) for m in messages})
        failed = {f["itemIdentifier"] for f in handler(event, None)["batchItemFailures"]}
        assert failed == {m["MessageId"] for m in messages}
        # Lambda deletes only what succeeded: nothing here.

    moved = []
    while received := aws.receive_message(QueueUrl=dead, MaxNumberOfMessages=10).get("Messages", []):
        moved += [json.loads(m["Body"]) for m in received]
        for m in received:
            aws.delete_message(QueueUrl=dead, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(moved, key=json.dumps) == sorted(bad.values(), key=json.dumps)
    assert databases_that_count_connections == [0]
