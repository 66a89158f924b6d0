"""The SQS retry queue: the client ids of webhook events that could not be applied wait here for a replay, as do
the users an invite found holding the client's email (shared.models.QueuedSync); and the sharded backfill's jobs
(shared.models.BackfillRange)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from shared.config import Settings
from shared.errors import UpstreamUnavailable

SQS_BATCH_SIZE = 10


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

    def send_batch(self, bodies: Sequence[str], *, source: str, reason: str) -> int:
        """Queue `bodies` in batches of ten (SQS's most per call); how many were queued. UpstreamUnavailable when
        SQS refuses a call or any message: those before it stay queued, so a caller's retry may queue some twice."""
        from botocore.exceptions import BotoCoreError, ClientError

        attributes = {
            "source": {"DataType": "String", "StringValue": source},
            "reason": {"DataType": "String", "StringValue": reason},
        }
        for start in range(0, len(bodies), SQS_BATCH_SIZE):
            entries = [
                {"Id": str(index), "MessageBody": body, "MessageAttributes": attributes}
                for index, body in enumerate(bodies[start : start + SQS_BATCH_SIZE])
            ]
            try:
                answer = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                raise UpstreamUnavailable("The jobs could not be queued; try again shortly") from exc
            if answer.get("Failed"):
                raise UpstreamUnavailable(
                    f"SQS refused {len(answer['Failed'])} of the jobs; try again shortly (running a job twice is safe)"
                )
        return len(bodies)

    def depths(self, dead_letter_url: str | None) -> dict[str, int | None]:
        """The queue's approximate depths (SQS GetQueueAttributes): visible, in flight, and the dead-letter
        queue's visible messages (None without its URL). UpstreamUnavailable when SQS does not answer."""
        from botocore.exceptions import BotoCoreError, ClientError

        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        try:
            main = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)["Attributes"]
            dead = (
                self._sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=names[:1])["Attributes"]
                if dead_letter_url
                else None
            )
        except (BotoCoreError, ClientError) as exc:
            raise UpstreamUnavailable("The queue's depths could not be read; try again shortly") from exc
        return {
            "visible": int(main["ApproximateNumberOfMessages"]),
            "in_flight": int(main["ApproximateNumberOfMessagesNotVisible"]),
            "dead_letter": int(dead["ApproximateNumberOfMessages"]) if dead is not None else None,
        }
