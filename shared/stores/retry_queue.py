"""The SQS retry queue: webhook events that could not be applied wait here, whole, for a replay."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from shared.config import Settings
from shared.errors import UpstreamUnavailable


class RetryQueue:
    """An SQS queue, reached with boto3 (imported on first use, so cold starts without a failure skip it)."""

    def __init__(self, queue_url: str, settings: Settings) -> None:
        self.queue_url = queue_url
        self._settings = settings

    @cached_property
    def _sqs(self) -> Any:
        import boto3
        from botocore.config import Config

        settings = self._settings
        # Bounded like the database steps (Settings.worst_case_request_seconds counts these): per-attempt
        # timeouts, and total_max_attempts counts the first attempt too (botocore's max_attempts would not).
        config = Config(
            connect_timeout=settings.queue_connect_timeout_seconds,
            read_timeout=settings.queue_read_timeout_seconds,
            retries={"total_max_attempts": settings.queue_max_attempts, "mode": "standard"},
        )
        return boto3.client("sqs", config=config)

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
