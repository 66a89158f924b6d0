"""The retry queue's SQS client is bounded by the settings (moto for SQS; no network but loopback)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from shared.config import Settings, get_settings
from shared.errors import UpstreamUnavailable
from shared.stores.retry_queue import RetryQueue

REGION = "eu-west-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def queue_url(aws_env: None) -> Iterator[str]:
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION).create_queue(QueueName="sync-retry")["QueueUrl"]


def test_the_client_takes_its_timeouts_and_attempts_from_the_settings(queue_url: str) -> None:
    settings = Settings(queue_connect_timeout_seconds=0.7, queue_read_timeout_seconds=1.3, queue_max_attempts=3)
    queue = RetryQueue(queue_url, settings)

    config = queue._sqs.meta.config
    assert (config.connect_timeout, config.read_timeout) == (0.7, 1.3)
    assert config.retries["mode"] == "standard"
    assert config.retries["total_max_attempts"] == 3  # the first attempt included

    assert queue.send('{"type": "INSERT"}', source="test", reason="upstream_unavailable")
    [message] = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=queue_url)["Messages"]
    assert message["Body"] == '{"type": "INSERT"}'


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_sqs_is_tried_queue_max_attempts_times(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", f"http://127.0.0.1:{closed_port()}")
    queue = RetryQueue(f"https://sqs.{REGION}.amazonaws.com/123456789012/sync-retry", Settings(queue_max_attempts=2))
    attempts: list[Any] = []
    queue._sqs.meta.events.register("before-send.sqs.SendMessage", lambda **kwargs: attempts.append(kwargs))

    with pytest.raises(UpstreamUnavailable):
        queue.send("{}", source="test", reason="upstream_unavailable")

    assert len(attempts) == 2


def test_a_batch_is_sent_ten_messages_per_call_each_whole(queue_url: str) -> None:
    queue = RetryQueue(queue_url, Settings())
    calls: list[Any] = []
    queue._sqs.meta.events.register("before-send.sqs.SendMessageBatch", lambda **kwargs: calls.append(kwargs))
    bodies = [f'{{"job": {index}}}' for index in range(25)]

    assert queue.send_batch(bodies, source="sync_client", reason="backfill_range") == 25

    assert len(calls) == 3
    sqs = boto3.client("sqs", region_name=REGION)
    received: list[str] = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages"
    ):
        for message in batch:
            assert message["MessageAttributes"]["reason"]["StringValue"] == "backfill_range"
            received.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(received) == sorted(bodies)


def test_a_message_sqs_refuses_in_a_batch_is_an_error(queue_url: str) -> None:
    queue = RetryQueue(queue_url, Settings())
    refused = {"Successful": [], "Failed": [{"Id": "0", "SenderFault": False, "Code": "InternalError"}]}
    with Stubber(queue._sqs) as sqs, pytest.raises(UpstreamUnavailable, match="refused 1 of the jobs"):
        sqs.add_response("send_message_batch", refused)
        queue.send_batch(["{}"], source="sync_client", reason="backfill_range")
