"""Bounded, jittered retries (tenacity) for transient database faults and the insert race."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import psycopg
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from shared.config import Settings
from shared.errors import ConcurrentSyncRace, UpstreamUnavailable
from shared.logs import log_event

T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Dropped connections, pool timeouts, statement timeouts, 40001 and 40P01 are worth another try."""
    if isinstance(exc, ConcurrentSyncRace):
        return True
    if isinstance(exc, psycopg.errors.InvalidAuthorizationSpecification):
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def call_with_retries(settings: Settings, what: str, func: Callable[[], T], **log_fields: object) -> T:
    """Run `func`, retrying transient faults; UpstreamUnavailable once the attempts are spent."""

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log_event(
            f"{what}_retry",
            attempt=state.attempt_number,
            error_type=type(exc).__name__ if exc else None,
            **log_fields,
        )

    retrying = Retrying(
        stop=stop_after_attempt(settings.retry_attempts) | stop_after_delay(settings.retry_budget_seconds),
        wait=wait_random_exponential(multiplier=0.05, max=settings.retry_max_wait_seconds),
        retry=retry_if_exception(is_transient),
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        return retrying(func)
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise UpstreamUnavailable(f"{what.replace('_', ' ').capitalize()} is unavailable; try again shortly") from exc
