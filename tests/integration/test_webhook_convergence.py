"""Recorded webhook payloads, shuffled and delivered up to three times while Project B keeps changing, into a
Project A that already holds older states, with some deliveries stalled between their read of Project B and
their write: Project A ends in Project B's rows.

What makes order matter here:
- Project A starts with older states (or the current one, or nothing), so a write that is not the newest can
  be seen to be wrong.
- Stalled deliveries read Project B, then Project B changes those clients and the other deliveries write the
  newer states, and only then do the stalled ones write what they read: the upsert's version guard must ignore
  them (and the archive's guard the stalled reads of an absent profile that came back).
- Some clients are already at their current version in Project A when their email changes in auth.users and
  nothing else changes: only Project B's trigger that advances the profile's version on an email change lets
  the new email through the version guard.

Deletes happen before the first delivery only: a read of a profile that is deleted before that read's write
lands would bring the archived client back (the upsert does not know about deletions).
"""

from __future__ import annotations

import json
import queue
import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from devtools.localdb import LocalProjects
from shared.ports import SourceState
from shared.wiring import sync_service
from tests.conftest import WEBHOOK_SECRET, Databases
from tests.integration.helpers import function_client
from tests.random_refs import random_email, random_name

CLIENTS = 50
HISTORY_EVENTS = 120  # recorded before the first delivery
LIVE_CHANGES = 80  # made while deliveries are in flight
STALLED_PRESENT = 8  # stalled deliveries of clients Project B has, then changes
STALLED_ABSENT = 2  # stalled deliveries of deleted clients, which then come back
EMAIL_ONLY = 6  # clients current in Project A whose only later change is their email
SENDERS = 8
WAIT_SECONDS = 30  # a bound on every wait, so that a broken run fails instead of hanging


@pytest.fixture
def recording_webhook(db: Databases) -> Iterator[None]:
    """The real webhook trigger installed, with no relay: requests stay queued in net.http_request_queue."""
    db.b.execute("select private.install_client_sync_webhook('http://127.0.0.1:9/unused', %s)", (WEBHOOK_SECRET,))
    yield
    db.b.execute("select private.uninstall_client_sync_webhook()")


_THEIRS = "coalesce(body -> 'record' ->> 'id', body -> 'old_record' ->> 'id') = any(%s)"


def recorded_count(conn: psycopg.Connection, client_ids: list[uuid.UUID]) -> int:
    ids = [str(client_id) for client_id in client_ids]
    return conn.execute(f"select count(*) from net.http_request_queue where {_THEIRS}", (ids,)).fetchone()[0]


def take_recorded(conn: psycopg.Connection, client_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    ids = [str(client_id) for client_id in client_ids]
    rows = conn.execute(
        f"delete from net.http_request_queue where {_THEIRS} returning id, headers, body", (ids,)
    ).fetchall()
    return [{"id": row[0], "headers": row[1], "body": row[2]} for row in sorted(rows)]


def event_client_id(event: dict[str, Any]) -> uuid.UUID:
    body = event["body"]
    return uuid.UUID((body["record"] or body["old_record"])["id"])


def change(conn: psycopg.Connection, client_id: uuid.UUID, action: str) -> None:
    """One change of a client in Project B; a deleted profile comes back whatever the action."""
    if conn.execute("select 1 from public.profiles where id = %s", (client_id,)).fetchone() is None:
        conn.execute("insert into public.profiles (id, name) values (%s, %s)", (client_id, random_name("Back")))
    elif action == "rename":
        conn.execute("update public.profiles set name = %s where id = %s", (random_name(), client_id))
    elif action == "age":
        conn.execute(
            "update public.profiles set age = coalesce(age, 17) + 1, gender_identity = 'f' where id = %s",
            (client_id,),
        )
    elif action == "email":
        conn.execute("update auth.users set email = %s where id = %s", (random_email("new"), client_id))
    elif action == "delete":
        conn.execute("delete from public.profiles where id = %s", (client_id,))
    else:
        raise ValueError(action)


def write_history(db: Databases, rng: random.Random, client_ids: list[uuid.UUID]) -> None:
    """Updates, email changes, deletes and returns in Project B until HISTORY_EVENTS events are recorded
    (an email change records two: auth.users, and the profile whose version it advances)."""
    while recorded_count(db.b, client_ids) < HISTORY_EVENTS:
        change(db.b, rng.choice(client_ids), rng.choice(["rename", "rename", "age", "email", "delete"]))


def duplicated(events: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    return [event for event in events for _ in range(rng.randint(1, 3))]


def post(caller: FlaskClient, event: dict[str, Any]) -> TestResponse:
    return caller.post("/", data=json.dumps(event["body"]), headers=event["headers"])


def test_deliveries_in_flight_while_project_b_changes_converge_to_project_b(
    projects: LocalProjects, db: Databases, recording_webhook: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    service = sync_service()
    read_clients = service.project_b.read_clients

    def read_client(client_id: uuid.UUID) -> SourceState:
        (state,) = read_clients([client_id])
        return state

    # Project B before the first delivery: the clients, then a history with deletes and returns.
    client_ids = [uuid.uuid4() for _ in range(CLIENTS)]
    for client_id in client_ids:
        db.add_project_b_client(client_id, random_name(), random_email(), age=rng.randint(18, 80))
    first_states = {client_id: read_client(client_id) for client_id in client_ids}
    write_history(db, rng, client_ids)
    history = take_recorded(db.b, client_ids)
    assert {event["body"]["type"] for event in history} == {"INSERT", "UPDATE", "DELETE"}, f"seed {seed}"
    assert {event["body"]["table"] for event in history} == {"profiles", "users"}, f"seed {seed}"

    present = [client_id for client_id in client_ids if db.source(client_id) is not None]
    absent = [client_id for client_id in client_ids if client_id not in present]
    stalled = rng.sample(present, STALLED_PRESENT) + rng.sample(absent, min(STALLED_ABSENT, len(absent)))
    email_only = rng.sample([client_id for client_id in present if client_id not in stalled], EMAIL_ONLY)
    others = [client_id for client_id in client_ids if client_id not in stalled and client_id not in email_only]
    group = {client_id: "stalled" for client_id in stalled} | {client_id: "email only" for client_id in email_only}

    # Project A before the first delivery: older states (Project B's first), the current one, or nothing.
    for client_id in client_ids:
        start = "current" if client_id in email_only else rng.choice(["first", "first", "current", "none"])
        if start != "none":
            state = first_states[client_id] if start == "first" else read_client(client_id)
            if state.client is not None:
                service.project_a.upsert_synced_clients([state.client])

    # What changes while deliveries are in flight: every stalled client after its stalled read (a deleted one
    # comes back), the email alone of the email-only clients, and any change but a delete of the others.
    live = [(client_id, rng.choice(["rename", "age", "email"])) for client_id in stalled]
    live += [(client_id, "email") for client_id in email_only]
    while len(live) < LIVE_CHANGES:
        live.append((rng.choice(others), rng.choice(["rename", "rename", "age", "email"])))
    rng.shuffle(live)
    stale = duplicated(history, rng)
    rng.shuffle(stale)
    by_client: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for event in history:
        by_client.setdefault(event_client_id(event), []).append(event)
    stalled_events = [rng.choice(by_client[client_id]) for client_id in stalled]

    # A stalled delivery reads Project B, then waits until every other delivery is done before it writes.
    stalled_reads = threading.Barrier(len(stalled) + 1)
    release = threading.Event()
    stalling = threading.local()

    def read_then_stall(client_ids: list[uuid.UUID]) -> list[SourceState]:
        states = read_clients(client_ids)
        if getattr(stalling, "pending", False):
            stalling.pending = False
            stalled_reads.wait(timeout=WAIT_SECONDS)
            if not release.wait(timeout=WAIT_SECONDS):
                raise TimeoutError("the stalled delivery was never released")
        return states

    monkeypatch.setattr(service.project_b, "read_clients", read_then_stall)

    def send_stalled(event: dict[str, Any]) -> tuple[int, Any]:
        stalling.pending = True
        try:
            response = post(function_client("project_b_webhook"), event)
        finally:
            stalling.pending = False
        return response.status_code, response.json

    work: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=2 * SENDERS)  # paces the writer

    def send() -> list[int]:
        caller = function_client("project_b_webhook")
        statuses = []
        while (event := work.get(timeout=WAIT_SECONDS)) is not None:
            statuses.append(post(caller, event).status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=len(stalled) + SENDERS) as pool:
        stalled_sends = [pool.submit(send_stalled, event) for event in stalled_events]
        senders: list[Future[list[int]]] = []
        deliveries = 0
        try:
            stalled_reads.wait(timeout=WAIT_SECONDS)
            senders = [pool.submit(send) for _ in range(SENDERS)]
            for step, (client_id, action) in enumerate(live):
                change(db.b, client_id, action)
                batch = duplicated(take_recorded(db.b, client_ids), rng) + stale[step :: len(live)]
                rng.shuffle(batch)
                deliveries += len(batch)
                for event in batch:
                    work.put(event, timeout=WAIT_SECONDS)
        finally:
            for _ in senders:
                work.put(None, timeout=WAIT_SECONDS)
            try:
                statuses = [status for sender in senders for status in sender.result(timeout=WAIT_SECONDS)]
            finally:
                release.set()
            stalled_answers = [future.result(timeout=WAIT_SECONDS) for future in stalled_sends]

    assert statuses == [200] * deliveries, f"seed {seed}"
    assert [status for status, _ in stalled_answers] == [200] * len(stalled), f"seed {seed}"
    assert recorded_count(db.b, client_ids) == 0, f"seed {seed}"
    mismatches = {}
    for client_id in client_ids:
        source, row = db.source(client_id), db.client(client_id)
        if source is None:
            if row is not None and row["status"] != "archived":
                mismatches[client_id] = (group.get(client_id, "other"), "absent in Project B", row["status"])
            continue
        expected = {
            "status": "active",
            "full_name": source["name"],
            "email": source["email"],
            "source_attributes": {
                "age": source["age"],
                "gender_identity": source["gender_identity"],
                "avatar_url": source["avatar_url"],
            },
            "source_updated_at": source["updated_at"],
        }
        actual = None if row is None else {key: row[key] for key in expected}
        if actual != expected:
            mismatches[client_id] = (group.get(client_id, "other"), expected, actual)
    groups = sorted(mismatch[0] for mismatch in mismatches.values())
    assert not mismatches, f"seed {seed}: clients differ from Project B, of groups {groups}: {mismatches}"
    # The stalled deliveries wrote last, and what they had read was older than what Project A held by then.
    assert [answer["outcome"] for _, answer in stalled_answers] == ["unchanged"] * len(stalled), f"seed {seed}"
