"""From a write in Project B to the row in Project A, through the real trigger, relay and webhook server."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID, uuid4

import psycopg

from bench.stack import add_clients
from devtools.localdb import LocalProjects
from devtools.webhook_relay import WebhookRelay

KINDS = ("insert", "name", "email")

# One statement each, so one transaction: its commit queues the webhook request and sends the notification.
_WRITES = {
    "insert": """
with users as (insert into auth.users (id, email) values (%(id)s, %(email)s) returning id)
insert into public.profiles (id, name, age, gender_identity) select id, %(name)s, 35, 'female' from users
""",
    "name": "update public.profiles set name = %(name)s where id = %(id)s",
    "email": "update auth.users set email = %(email)s where id = %(id)s",
}
_READS = {
    "full_name": "select full_name from public.clients where id = %s",
    "email": "select email from public.clients where id = %s",
}
_COUNT_IN_A = "select count(*) from public.clients where id = any(%s)"


@dataclass(frozen=True)
class Propagation:
    """One write in Project B: its kind and the seconds until Project A showed it (None: not within the deadline)."""

    kind: str
    seconds: float | None


@dataclass
class PropagationResult:
    samples: list[Propagation] = field(default_factory=list)
    stopped_early: bool = False  # the overall time budget ran out before all writes were made

    def arrived(self, kind: str | None = None) -> list[float]:
        return [s.seconds for s in self.samples if s.seconds is not None and kind in (None, s.kind)]

    @property
    def missing(self) -> int:
        return sum(1 for s in self.samples if s.seconds is None)


@dataclass(frozen=True)
class Burst:
    """Clients inserted in one Project B transaction: how many reached Project A, and after how long."""

    ids: list[UUID]
    arrived: int
    seconds: float


@dataclass(frozen=True)
class LiveWebhook:
    relay: WebhookRelay
    thread: threading.Thread

    def relay_statuses(self) -> Counter[str]:
        """The relay's deliveries by the status the webhook answered ('None': nothing answered)."""
        return Counter({str(status): count for status, count in self.relay.statuses.copy().items()})


@contextlib.contextmanager
def live_webhook(projects: LocalProjects, url: str, secret: str, relay_log: Path) -> Iterator[LiveWebhook]:
    """The webhook installed in Project B, pointing at `url`, and WebhookRelay running in this process.

    The relay prints one line per delivery on stdout; that goes to `relay_log` meanwhile, so stdout keeps only
    the table (progress goes to stderr). Uninstalled and stopped on exit.
    """
    with psycopg.connect(projects.project_b_url, autocommit=True) as conn:
        conn.execute("select private.install_client_sync_webhook(%s, %s)", (url, secret))
    try:
        with relay_log.open("a") as log, contextlib.redirect_stdout(log):
            relay = WebhookRelay(projects.project_b_url)
            thread = relay.start()
            try:
                yield LiveWebhook(relay, thread)
            finally:
                relay.stop()
                thread.join(timeout=10)
    finally:
        with psycopg.connect(projects.project_b_url, autocommit=True) as conn:
            conn.execute("select private.uninstall_client_sync_webhook()")


def _write(kind: str, n: int, existing: list[UUID]) -> tuple[UUID, dict[str, object], str, str]:
    """The statement's parameters, and the Project A column and value that show it arrived."""
    client_id = uuid4() if kind == "insert" else existing.pop()
    tag = f"{n}-{uuid4().hex[:8]}"
    params: dict[str, object] = {"id": client_id, "name": f"Propagation {tag}", "email": f"prop-{tag}@example.com"}
    if kind == "email":
        return client_id, params, "email", str(params["email"])
    return client_id, params, "full_name", str(params["name"])


def _arrival(
    reader: psycopg.Connection, client_id: UUID, column: str, expected: str, began: float, deadline: float, poll: float
) -> float | None:
    """Seconds from `began` until Project A shows `expected`, polling every `poll` s; None after `deadline` s."""
    query = _READS[column]
    while True:
        row = reader.execute(query, (client_id,)).fetchone()
        elapsed = time.perf_counter() - began
        if row is not None and row[0] == expected:
            return elapsed
        if elapsed > deadline:
            return None
        time.sleep(poll)


def measure_propagation(
    projects: LocalProjects,
    synced: list[UUID],
    count: int,
    *,
    deadline: float,
    budget: float,
    poll: float = 0.001,
    pause: float = 0.01,
) -> PropagationResult:
    """`count` sequential writes in Project B (a new client, a renamed profile, a changed email, in turn), each
    timed from just before its statement is sent until Project A shows it. `synced`: clients in both projects
    to rename or re-address (one write each). Stops early once `budget` seconds have gone by."""
    result = PropagationResult()
    existing = list(synced)
    started = time.monotonic()
    with (
        psycopg.connect(projects.project_b_url, autocommit=True) as writer,
        psycopg.connect(projects.project_a_url, autocommit=True) as reader,
    ):
        for n in range(count):
            if time.monotonic() - started > budget:
                result.stopped_early = True
                break
            kind = KINDS[n % len(KINDS)]
            client_id, params, column, expected = _write(kind, n, existing)
            began = time.perf_counter()
            writer.execute(_WRITES[kind], params)
            result.samples.append(
                Propagation(kind, _arrival(reader, client_id, column, expected, began, deadline, poll))
            )
            time.sleep(pause)  # lets the relay and the server finish with this event before the next write
    return result


def sync_burst(projects: LocalProjects, count: int, *, deadline: float, poll: float = 0.005) -> Burst:
    """`count` new clients in one Project B transaction, left to the webhook; timed from before the write
    until all are in Project A (or `deadline` s)."""
    began = time.perf_counter()
    ids = add_clients(projects, count)
    with psycopg.connect(projects.project_a_url, autocommit=True) as reader:
        while True:
            row = reader.execute(_COUNT_IN_A, (ids,)).fetchone()
            arrived = int(row[0]) if row else 0
            elapsed = time.perf_counter() - began
            if arrived == count or elapsed > deadline:
                return Burst(ids, arrived, elapsed)
            time.sleep(poll)
