"""The invocation's deadline: no attempt of any step starts after it, however many steps and retries are left."""

from __future__ import annotations

import time

import pytest

from shared.config import Settings
from shared.deadline import attempts_until
from shared.errors import TransientError, UpstreamUnavailable
from shared.retry import call_with_retries


def test_past_the_deadline_no_attempt_starts() -> None:
    calls: list[int] = []
    with attempts_until(0.0), pytest.raises(UpstreamUnavailable):
        call_with_retries(Settings(), "project_a", lambda: calls.append(1))
    assert calls == []


def test_the_deadline_stops_retries_the_budget_would_allow() -> None:
    settings = Settings(
        retry_attempts=10,
        retry_budget_seconds=30,
        retry_max_wait_seconds=0,
        function_timeout_seconds=900,
        http_timeout_seconds=900,
    )
    calls: list[float] = []

    def failing() -> None:
        calls.append(time.monotonic())
        time.sleep(0.03)  # ten attempts would take 0.3 s
        raise TransientError("down")

    started = time.monotonic()
    with attempts_until(0.1), pytest.raises(UpstreamUnavailable):
        call_with_retries(settings, "project_a", failing)
    assert all(at - started < 0.1 for at in calls)
    assert 1 <= len(calls) <= 4


def test_without_a_deadline_the_budget_and_attempts_rule() -> None:
    settings = Settings(retry_attempts=3, retry_max_wait_seconds=0)
    calls: list[int] = []

    def failing() -> None:
        calls.append(1)
        raise TransientError("down")

    with pytest.raises(UpstreamUnavailable):
        call_with_retries(settings, "project_a", failing)
    assert len(calls) == 3
