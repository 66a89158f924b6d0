"""The booking's SQL timed, for the benches that set a booking's time against its parts: create_session's statement
for a synced client (public.book_session_as, as client_sync) less a `select 1` on the same connection (execution
and commit, its WAL flush), on a local connection (bench.booking_time) or through the same added round trip time
as the load (bench.create_session); or EXPLAIN ANALYZE's execution time of it, rolled back, which leaves the commit
out."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg.types.json import Jsonb

STATEMENT = "select public.book_session_as(%s, %s, %s, %s, %s, %s, %s)"


def timed_ms(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


class BookingSql:
    """A connection to Project A (`admin_a_url`) as client_sync, booking `client_id` for `therapist` at `starts()`."""

    def __init__(self, admin_a_url: str, therapist: UUID, client_id: UUID, starts: Callable[[], datetime]) -> None:
        self._conn = psycopg.connect(admin_a_url, autocommit=True)
        self._conn.execute("set role client_sync")
        self._claims = Jsonb({"sub": str(therapist), "role": "authenticated", "aud": "authenticated"})
        self._client_id = client_id
        self._starts = starts

    def _params(self) -> tuple[Any, ...]:
        return (self._claims, self._client_id, self._starts(), 50, None, str(uuid4()), None)

    def server_ms(self) -> float:
        """One booking's statement, less one `select 1`, on the connection."""
        booked = timed_ms(lambda: self._conn.execute(STATEMENT, self._params()).fetchone())
        return booked - timed_ms(lambda: self._conn.execute("select 1").fetchone())

    def explain_ms(self) -> float:
        with self._conn.transaction(force_rollback=True):
            plan = self._conn.execute("explain (analyze, format json) " + STATEMENT, self._params()).fetchone()
        assert plan is not None
        return float(plan[0][0]["Execution Time"])

    def close(self) -> None:
        self._conn.close()
