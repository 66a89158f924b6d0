"""Webhook events as Project B's trigger sends them, and N concurrent keep-alive senders POSTing them."""

from __future__ import annotations

import http.client
import json
from collections import deque
from collections.abc import Callable
from uuid import UUID

import psycopg

from bench.load import LoadResult, post, run_callers
from bench.stack import add_clients
from devtools.localdb import LocalProjects

# What private.client_sync_webhook() sends (db/project_b/supabase/schemas/40_webhook.sql): ids only.
_UPDATE_EVENTS = """
with renamed as (
  update public.profiles p set name = p.name || ' (renamed)' where p.id = any(%(ids)s) returning p.id
)
select jsonb_build_object('old_record', jsonb_build_object('id', id), 'record', jsonb_build_object('id', id),
                          'type', 'UPDATE', 'table', 'profiles', 'schema', 'public')::text
  from renamed
"""

_INSERT_EVENTS = """
select jsonb_build_object('old_record', null, 'record', jsonb_build_object('id', p.id),
                          'type', 'INSERT', 'table', 'profiles', 'schema', 'public')::text
  from public.profiles p where p.id = any(%(ids)s)
"""

# An outcome that writes nothing in Project A for an event that should have written.
_NO_WRITE = frozenset({"unchanged", "conflict"})


def update_events(projects: LocalProjects, count: int, owner: UUID) -> deque[bytes]:
    """`count` clients in both projects whose profile then changed in Project B: UPDATE events that write."""
    ids = add_clients(projects, count, synced_to=owner)
    return _events(projects, _UPDATE_EVENTS, ids)


def insert_events(projects: LocalProjects, count: int) -> deque[bytes]:
    """`count` new clients only in Project B: INSERT events that write."""
    return _events(projects, _INSERT_EVENTS, add_clients(projects, count))


def _events(projects: LocalProjects, query: str, ids: list[UUID]) -> deque[bytes]:
    with psycopg.connect(projects.project_b_url) as conn:
        return deque(row[0].encode() for row in conn.execute(query, {"ids": ids}))


def outcome_key(status: int, answer: bytes) -> str:
    """'200 updated' for an applied event, else the status; what LoadResult.statuses counts."""
    if status != 200:
        return str(status)
    try:
        return f"200 {json.loads(answer).get('outcome')}"
    except ValueError:
        return "200 unreadable"


def failures(result: LoadResult) -> int:
    """Events not answered 200."""
    return sum(n for key, n in result.statuses.items() if not key.startswith("200"))


def without_write(result: LoadResult) -> int:
    """Events answered 200 that wrote nothing in Project A."""
    return sum(n for key, n in result.statuses.items() if key.split(" ")[-1] in _NO_WRITE)


def run_senders(
    connect: Callable[[], http.client.HTTPConnection],
    secret: str,
    events: deque[bytes],
    *,
    senders: int,
    seconds: float,
    warmup: float,
) -> LoadResult:
    """`senders` keep-alive senders POSTing each event once, with the bearer secret the trigger sends."""

    def next_body() -> bytes | None:
        try:
            return events.popleft()  # atomic: each event goes to one sender only
        except IndexError:
            return None

    return run_callers(
        connect,
        next_body,
        lambda conn, body: outcome_key(*post(conn, secret, body)),
        callers=senders,
        seconds=seconds,
        warmup=warmup,
    )
