"""The SQS retry queue: webhook events that could not be applied wait here, whole, for a replay."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from shared.errors import UpstreamUnavailable


class RetryQueue:
    """An SQS queue, reached with boto3 (imported on first use, so cold starts without a failure skip it)."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    @cached_property
    def _sqs(self) -> Any:
        import boto3

        return boto3.client("sqs")

    def send(self, body: str, *, source: str, reason: str) -> str:
        """Queue `body` unchanged; UpstreamUnavailable when SQS refuses it too."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=body,
                MessageAttributes={
                    "source": {"DataType": "String", "StringValue": source},
                    "reason": {"DataType": "String", "StringValue": reason},
                },
            )
        except (BotoCoreError, ClientError) as exc:
            raise UpstreamUnavailable("The event could not be applied nor queued; try again shortly") from exc
        return str(answer["MessageId"])
