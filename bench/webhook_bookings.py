"""The baseline side by side: a booking for a client only in Project B versus one the webhook already synced."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass, field
from uuid import UUID

from bench.load import LoadResult, post, session_body
from bench.stack import FunctionServer

ON_DEMAND = "on_demand"
PROACTIVE = "proactive"


@dataclass
class Bookings:
    """create_session latencies per case (LoadResult: statuses and percentiles), and answers that contradict it:
    an on-demand booking that did not copy the client, or a proactive one that did."""

    on_demand: LoadResult = field(default_factory=LoadResult)
    proactive: LoadResult = field(default_factory=LoadResult)
    unexpected_sync: int = 0


def measure_bookings(
    server: FunctionServer, token: str, on_demand: list[UUID], proactive: list[UUID], *, warmup: int
) -> Bookings:
    """Sequential bookings on one keep-alive connection, the two cases alternating (and which goes first, too),
    so that both see the same server and database state. The first `warmup` pairs are not counted."""
    if len(on_demand) != len(proactive) or len(on_demand) <= warmup:
        raise ValueError("need as many clients of each case, more than the warm-up")
    bookings = Bookings()
    conn = server.connection()
    try:
        for n, pair in enumerate(zip(on_demand, proactive, strict=True)):
            cases = ((ON_DEMAND, pair[0]), (PROACTIVE, pair[1]))
            for case, client_id in cases if n % 2 == 0 else cases[::-1]:
                conn = _book(bookings, case, conn, server, token, client_id, counted=n >= warmup)
    finally:
        conn.close()
    return bookings


def _book(
    bookings: Bookings,
    case: str,
    conn: http.client.HTTPConnection,
    server: FunctionServer,
    token: str,
    client_id: UUID,
    *,
    counted: bool,
) -> http.client.HTTPConnection:
    """One booking; the connection to use next (a new one after a transport error)."""
    body = session_body(client_id)
    began = time.perf_counter()
    try:
        status, answer = post(conn, token, body)
        key = str(status)
    except (OSError, http.client.HTTPException) as exc:
        status, answer, key = 0, b"", type(exc).__name__
        conn.close()
        conn = server.connection()
    elapsed = time.perf_counter() - began
    if not counted:
        return conn
    result: LoadResult = getattr(bookings, case)
    result.statuses[key] += 1
    if status == 201:
        result.latencies.append(elapsed)
        result.seconds += elapsed
        if json.loads(answer).get("client_synced") is not (case == ON_DEMAND):
            bookings.unexpected_sync += 1
    return conn
