"""What AWS runs around sync_client, run locally by `make dev`: an SQS event source mapping (the poller) and an
EventBridge schedule. Both call the function's real lambda_handler, imported as the Lambda runtime imports it.

  python -m devtools.lambda_runtime poll       batches of up to 10 messages, partial batch failures, visibility
  python -m devtools.lambda_runtime schedule   a scheduled event every DEV_RECONCILE_SECONDS (default 60)

SIGTERM, SIGINT or SIGHUP stop either between two batches or runs (never in the middle of one).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VISIBILITY_TIMEOUT_SECONDS = 30
BATCH_SIZE = 10

stopping = threading.Event()


def _stop(_signum: int, _frame: FrameType | None) -> None:
    stopping.set()


def _function_timeout() -> float:
    """The invocation's length: FUNCTION_TIMEOUT_SECONDS, which devtools.services sets as template.yaml does."""
    from shared.config import get_settings

    return float(get_settings().function_timeout_seconds)


def lambda_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("sync_client_main", ROOT / "functions" / "sync_client" / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = module.lambda_handler
    return handler


class Context:
    """The part of Lambda's context object the function reads: the time left of this invocation."""

    def __init__(self, timeout_seconds: float) -> None:
        self.deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as boto3 receives it, shaped as Lambda's SQS event record."""
    attributes = {
        key: {
            "stringValue": value.get("StringValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for key, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": attributes,
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def poll(queue_url: str) -> None:
    import boto3

    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    sqs = boto3.client("sqs", region_name=region)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    handler = lambda_handler()
    print(f"[poller] feeding {queue_url} to sync_client in batches of up to {BATCH_SIZE}", flush=True)
    from botocore.exceptions import BotoCoreError, ClientError

    while not stopping.is_set():
        try:
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=BATCH_SIZE,
                WaitTimeSeconds=1,
                VisibilityTimeout=VISIBILITY_TIMEOUT_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        except (BotoCoreError, ClientError) as exc:  # the local SQS stopping first, or restarting
            if not stopping.wait(1.0):
                print(f"[poller] the queue did not answer: {type(exc).__name__}", flush=True)
            continue
        if not messages:
            continue
        event = {"Records": [sqs_record(message, queue_arn, region) for message in messages]}
        try:
            answer = handler(event, Context(_function_timeout()))
            failed = {failure["itemIdentifier"] for failure in answer.get("batchItemFailures", [])}
        except Exception as exc:  # an invocation error: the whole batch comes back, as on Lambda
            print(f"[poller] batch failed: {type(exc).__name__}", flush=True)
            continue
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:][:10])]
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        print(f"[poller] batch of {len(messages)}: {len(done)} done, {len(failed)} back to the queue", flush=True)


def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/client-sync-dev-reconcile"],
        "detail": {},
    }


def schedule(every_seconds: float) -> None:
    handler = lambda_handler()
    print(f"[schedule] reconcile every {every_seconds:g} s", flush=True)
    while not stopping.wait(every_seconds):
        try:
            answer = handler(scheduled_event(), Context(_function_timeout()))
            print(f"[schedule] reconcile: {json.dumps(answer)}", flush=True)
        except Exception as exc:
            print(f"[schedule] reconcile failed: {type(exc).__name__}", flush=True)


def main(argv: list[str]) -> int:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop)
    if argv == ["poll"]:
        poll(os.environ["SYNC_RETRY_QUEUE_URL"])
    elif argv == ["schedule"]:
        schedule(float(os.environ.get("DEV_RECONCILE_SECONDS", "60")))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
