"""One JSON line per step. Only allow-listed fields are written: never a token, key or email."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

_ALLOWED_FIELDS = frozenset(
    {
        "client_id",
        "therapist_id",
        "session_id",
        "other_client_id",
        "project_b_user_id",
        "conflict",
        "outcome",
        "attempt",
        "error_code",
        "error_type",
        "status",
        "event_type",
        "table",
        "function",
        "queued",
        "mode",
        "dry_run",
        "inserted",
        "updated",
        "unchanged",
        "archived",
        "conflicts",
        "count",
        "message_id",
        "reason",  # a configuration error's: it names settings, never their values
    }
)


class CurrentStreamHandler(logging.StreamHandler[Any]):
    """Writes to whatever sys.stdout (or sys.stderr) is at the time: Lambda and test capture swap it, and so does
    rich's progress bar (ops/cli), to print above the bar."""

    def __init__(self, name: Literal["stdout", "stderr"] = "stdout") -> None:
        self._stream_name = name
        super().__init__()

    @property
    def stream(self) -> Any:
        return getattr(sys, self._stream_name)

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


LOGGER_NAME = "client_sync"
_logger = logging.getLogger(LOGGER_NAME)
if not _logger.handlers:
    _handler = CurrentStreamHandler()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _logger.addHandler(_handler)
    _logger.setLevel(logging.INFO)
    _logger.propagate = False


_context: ContextVar[dict[str, Any]] = ContextVar("log_context", default={})  # noqa: B039 - never mutated


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every line logged inside (this thread or task only): the ids a request is about."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Write `event` with the allowed `fields` (and the log_context's); anything else is dropped, not masked."""
    record = {"level": logging.getLevelName(level).lower(), "event": event}
    merged = {**_context.get(), **fields}
    record.update({key: str(value) for key, value in merged.items() if key in _ALLOWED_FIELDS and value is not None})
    _logger.log(level, json.dumps(record))
