"""A recorded stream of real webhook payloads, shuffled and delivered up to three times, ends in Project B's rows."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import WEBHOOK_SECRET, Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session import run_concurrently
from tests.random_refs import random_email, random_name

CLIENTS = 50
EVENTS = 200


@pytest.fixture
def recording_webhook(db: Databases) -> Iterator[None]:
    """The real webhook trigger installed, with no relay: requests stay queued in net.http_request_queue."""
    db.b.execute("select private.install_client_sync_webhook('http://127.0.0.1:9/unused', %s)", (WEBHOOK_SECRET,))
    yield
    db.b.execute("select private.uninstall_client_sync_webhook()")


_THEIRS = "coalesce(body -> 'record' ->> 'id', body -> 'old_record' ->> 'id') = any(%s)"


def recorded_count(db: Databases, client_ids: list[uuid.UUID]) -> int:
    ids = [str(client_id) for client_id in client_ids]
    return db.b.execute(f"select count(*) from net.http_request_queue where {_THEIRS}", (ids,)).fetchone()[0]


def take_recorded(db: Databases, client_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    ids = [str(client_id) for client_id in client_ids]
    rows = db.b.execute(
        f"delete from net.http_request_queue where {_THEIRS} returning id, headers, body", (ids,)
    ).fetchall()
    return [{"id": row[0], "headers": row[1], "body": row[2]} for row in sorted(rows)]


def write_history(db: Databases, rng: random.Random) -> list[uuid.UUID]:
    """Inserts, updates, email changes, deletes and returns in Project B until EVENTS events are recorded
    (an email change records two: auth.users, and the profile whose version it advances)."""
    client_ids = [uuid.uuid4() for _ in range(CLIENTS)]
    present: set[uuid.UUID] = set()
    for client_id in client_ids:
        db.add_project_b_client(client_id, random_name(), random_email(), age=rng.randint(18, 80))
        present.add(client_id)
    while recorded_count(db, client_ids) < EVENTS:
        client_id = rng.choice(client_ids)
        action = rng.choice(["rename", "rename", "age", "email", "delete"])
        if client_id not in present:
            db.b.execute("insert into public.profiles (id, name) values (%s, %s)", (client_id, random_name("Back")))
            present.add(client_id)
        elif action == "rename":
            db.b.execute("update public.profiles set name = %s where id = %s", (random_name(), client_id))
        elif action == "age":
            db.b.execute("update public.profiles set age = age + 1, gender_identity = 'f' where id = %s", (client_id,))
        elif action == "email":
            db.b.execute("update auth.users set email = %s where id = %s", (random_email("new"), client_id))
        else:
            db.b.execute("delete from public.profiles where id = %s", (client_id,))
            present.discard(client_id)
    return client_ids


def test_shuffled_duplicated_stream_converges_to_project_b(
    projects: Any, db: Databases, recording_webhook: None
) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    client_ids = write_history(db, rng)
    recorded = take_recorded(db, client_ids)
    assert EVENTS <= len(recorded) <= EVENTS + 1
    assert {event["body"]["type"] for event in recorded} == {"INSERT", "UPDATE", "DELETE"}
    assert {event["body"]["table"] for event in recorded} == {"profiles", "users"}
    deliveries = [event for event in recorded for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)
    callers = [function_client("project_b_webhook") for _ in range(8)]

    def deliver_share(worker: int) -> list[int]:
        return [
            callers[worker].post("/", data=json.dumps(event["body"]), headers=event["headers"]).status_code
            for event in deliveries[worker::8]
        ]

    statuses = [status for share in run_concurrently(8, deliver_share) for status in share]

    assert statuses == [200] * len(deliveries), f"seed {seed}"
    for client_id in client_ids:
        source, row = db.source(client_id), db.client(client_id)
        if source is None:
            assert row is None or row["status"] == "archived", f"seed {seed}"
            continue
        assert row is not None, f"seed {seed}"
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
        assert {key: row[key] for key in expected} == expected, f"seed {seed}"
