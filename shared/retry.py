"""Bounded, jittered retries (tenacity) of a store's transient faults: the stores (shared/stores) raise
TransientError (and ConcurrentSyncRace) for what may pass; this module knows no driver."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from shared.config import Settings
from shared.deadline import PastDeadline, past_deadline
from shared.errors import TransientError, UpstreamUnavailable
from shared.logs import log_event

T = TypeVar("T")


def call_with_retries(settings: Settings, what: str, func: Callable[[], T]) -> T:
    """Run `func`, retrying transient faults within RETRY_ATTEMPTS and RETRY_BUDGET_SECONDS, and never starting
    an attempt past the invocation's deadline (attempts_until); then UpstreamUnavailable. `what` names the
    project in the log lines and the answer."""

    def attempt() -> T:
        if past_deadline():
            raise PastDeadline(what)
        return func()

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc
        log_event(f"{what}_retry", attempt=state.attempt_number, error_type=type(cause).__name__ if cause else None)

    retrying = Retrying(
        stop=stop_after_attempt(settings.retry_attempts)
        | stop_after_delay(settings.retry_budget_seconds)
        | stop_when(lambda _state: past_deadline()),
        wait=wait_random_exponential(multiplier=0.05, max=settings.retry_max_wait_seconds),
        retry=retry_if_exception_type(TransientError),
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except TransientError as exc:
        raise UpstreamUnavailable(f"{what.replace('_', ' ').capitalize()} is unavailable; try again shortly") from exc


class stop_when(stop_base):
    """Stop retrying once `condition` holds."""

    def __init__(self, condition: Callable[[RetryCallState], bool]) -> None:
        self.condition = condition

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.condition(retry_state)


class _Store(Protocol):
    settings: Settings
    project: str


M = TypeVar("M", bound=Callable[..., Any])


def retried(method: M) -> M:
    """A store method, retried as call_with_retries does, under the store's project name."""

    @functools.wraps(method)
    def with_retries(store: _Store, *args: Any, **kwargs: Any) -> Any:
        return call_with_retries(store.settings, store.project, lambda: method(store, *args, **kwargs))

    return with_retries  # type: ignore[return-value]
