"""The invocation's deadline for starting attempts: shared/retry.py starts none after it, so an invocation ends by
then plus the one attempt in flight, whatever its steps and however many calls each makes. Every HTTP request
sets it (shared/http.py, Settings.request_deadline_seconds), and so do sync_client's jobs
(Settings.job_deadline_seconds), whose budget decides when they stop paging. Kept apart from shared/retry.py so
that a cold start does not import tenacity."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from shared.errors import TransientError

_deadline: ContextVar[float | None] = ContextVar("attempts_deadline", default=None)


class PastDeadline(TransientError):
    """The invocation's deadline has passed: no attempt starts (answered 503 like any fault that persisted)."""


@contextmanager
def attempts_until(seconds: float) -> Iterator[None]:
    """No attempt of any step starts later than `seconds` from now, within this block."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def past_deadline() -> bool:
    deadline = _deadline.get()
    return deadline is not None and time.monotonic() >= deadline
