"""Through the real trigger, the relay and HTTP: a change in Project B shows up in Project A."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.webhook_relay import WebhookRelay
from tests.conftest import WEBHOOK_SECRET, Databases
from tests.integration.helpers import serve_function
from tests.random_refs import random_email, random_name

DEADLINE_SECONDS = 10


@pytest.fixture
def live_webhook(projects: Any, db: Databases) -> Iterator[WebhookRelay]:
    with serve_function("project_b_webhook") as url:
        db.b.execute("select private.install_client_sync_webhook(%s, %s)", (url, WEBHOOK_SECRET))
        relay = WebhookRelay(projects.project_b_url)
        thread = relay.start()
        assert relay.listening.wait(10), "the relay did not start listening"
        try:
            yield relay
        finally:
            db.b.execute("select private.uninstall_client_sync_webhook()")
            relay.stop()
            thread.join(timeout=10)


def eventually(check: Callable[[], Any]) -> Any:
    """Poll `check` until it returns something truthy; fail after the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_SECONDS} s")
        time.sleep(0.02)


def test_insert_update_email_change_and_delete_in_project_b_reach_project_a(
    live_webhook: WebhookRelay, db: Databases
) -> None:
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, "Ada Example", random_email("ada"), age=41, gender_identity="female")

    row = eventually(lambda: db.client(client_id))
    assert row["full_name"] == "Ada Example"
    assert row["notes"] == "Synced from Project B. Age: 41, Gender: female"

    db.a.execute("update public.clients set phone = '+1 555 0100', notes = 'Own notes' where id = %s", (client_id,))
    db.b.execute("update public.profiles set name = 'Ada Renamed' where id = %s", (client_id,))
    row = eventually(lambda: (r := db.client(client_id)) and r["full_name"] == "Ada Renamed" and r)
    assert (row["phone"], row["notes"]) == ("+1 555 0100", "Own notes")

    new_email = random_email("ada-new")
    db.b.execute("update auth.users set email = %s where id = %s", (new_email, client_id))
    eventually(lambda: db.client(client_id)["email"] == new_email)

    db.b.execute("delete from public.profiles where id = %s", (client_id,))
    eventually(lambda: db.client(client_id)["status"] == "archived")
    assert set(live_webhook.statuses) == {200}


def test_a_rolled_back_change_sends_nothing(live_webhook: WebhookRelay, db: Databases) -> None:
    client_id = uuid.uuid4()
    with db.b.transaction(force_rollback=True):
        db.add_project_b_client(client_id, random_name(), random_email())
    marker = uuid.uuid4()
    db.add_project_b_client(marker, random_name(), random_email())
    eventually(lambda: db.client(marker))
    assert db.client(client_id) is None


def test_the_relay_reconnects_and_sends_what_was_queued_meanwhile(live_webhook: WebhookRelay, db: Databases) -> None:
    terminated = db.b.execute(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = 'webhook-relay'"
    ).fetchone()[0]
    assert terminated == 1
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name(), random_email())
    eventually(lambda: db.client(client_id))
