"""HTTP callers: one request, and N concurrent keep-alive callers for a fixed time after a warm-up."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from uuid import UUID

_starts = count()
_BASE = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def session_body(client_id: UUID) -> bytes:
    """A create_session body; every call gets its own start time."""
    starts_at = _BASE + timedelta(minutes=next(_starts))
    return json.dumps(
        {"client_id": str(client_id), "starts_at": starts_at.isoformat(), "duration_minutes": 50, "notes": "bench"}
    ).encode()


def post(conn: http.client.HTTPConnection, token: str, body: bytes) -> tuple[int, bytes]:
    conn.request(
        "POST", "/", body=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    )
    response = conn.getresponse()
    return response.status, response.read()


class ClientIds:
    """Hands out client ids to the callers, cycling or each id once; thread-safe."""

    def __init__(self, ids: list[UUID], *, cycle: bool) -> None:
        self._ids = ids
        self._cycle = cycle
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> UUID | None:
        with self._lock:
            if self._next >= len(self._ids):
                if not self._cycle:
                    return None
                self._next = 0
            client_id = self._ids[self._next]
            self._next += 1
            return client_id


@dataclass
class LoadResult:
    """What the measured window saw (the warm-up is not in it)."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    exhausted: bool = False

    @classmethod
    def merged(cls, results: list[LoadResult]) -> LoadResult:
        """Several runs of the same case as one: their requests over their summed time."""
        merged = cls(exhausted=any(result.exhausted for result in results))
        for result in results:
            merged.seconds += result.seconds
            merged.latencies.extend(result.latencies)
            merged.statuses.update(result.statuses)
        return merged

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "201")

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile_ms(self, pct: int) -> float:
        if len(self.latencies) < 2:
            return 1000 * (self.latencies[0] if self.latencies else 0.0)
        return 1000 * statistics.quantiles(self.latencies, n=100, method="inclusive")[pct - 1]


def run_callers(
    connect: Callable[[], http.client.HTTPConnection],
    next_body: Callable[[], bytes | None],
    send: Callable[[http.client.HTTPConnection, bytes], str],
    *,
    callers: int,
    seconds: float,
    warmup: float,
) -> LoadResult:
    """`callers` threads, each on its own keep-alive connection, sending `next_body()` for `warmup` + `seconds`.

    `send` answers the key LoadResult.statuses counts; running out of bodies (None) ends the run (`exhausted`).
    """
    result = LoadResult()
    lock = threading.Lock()
    measure_from = time.monotonic() + warmup
    deadline = measure_from + seconds
    last_end = [measure_from]

    def caller() -> None:
        conn = connect()
        try:
            while (began := time.monotonic()) < deadline:
                body = next_body()
                if body is None:
                    with lock:
                        result.exhausted = True
                    return
                try:
                    key = send(conn, body)
                except (OSError, http.client.HTTPException) as exc:
                    key = type(exc).__name__
                    conn.close()
                    conn = connect()
                ended = time.monotonic()
                if began >= measure_from:
                    with lock:
                        result.latencies.append(ended - began)
                        result.statuses[key] += 1
                        last_end[0] = max(last_end[0], ended)
        finally:
            conn.close()

    threads = [threading.Thread(target=caller, name=f"caller-{n}", daemon=True) for n in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=warmup + seconds + 30)
    result.seconds = last_end[0] - measure_from
    return result


def run_load(
    connect: Callable[[], http.client.HTTPConnection],
    token: str,
    client_ids: ClientIds,
    *,
    callers: int,
    seconds: float,
    warmup: float,
) -> LoadResult:
    """create_session bookings of `client_ids` by `callers` keep-alive callers for `warmup` + `seconds`."""

    def next_body() -> bytes | None:
        client_id = client_ids.take()
        return None if client_id is None else session_body(client_id)

    return run_callers(
        connect,
        next_body,
        lambda conn, body: str(post(conn, token, body)[0]),
        callers=callers,
        seconds=seconds,
        warmup=warmup,
    )
