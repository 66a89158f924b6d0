"""Races the sync must win, forced with real concurrent transactions: an email taken while a copy is being
written, and an archive while a booking holds the client."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from shared.wiring import sync_service
from tests.conftest import THERAPIST, Databases
from tests.integration.test_access_control import as_user, synced_client
from tests.integration.test_create_session import new_project_b_client
from tests.random_refs import random_email


def wait_until_blocked(db: Databases, application_name: str, timeout: float = 10.0) -> None:
    """Until a backend of `application_name` waits for a lock (polls pg_stat_activity; no fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = db.a.execute(
            "select count(*) from pg_stat_activity where application_name = %s and wait_event_type = 'Lock'",
            (application_name,),
        ).fetchone()[0]
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError(f"no backend of {application_name} waited for a lock within {timeout} s")


def sync_while_a_row_is_written(
    projects: Any, db: Databases, client_id: uuid.UUID, insert: str, params: tuple[Any, ...]
) -> list[Any]:
    """Project A writes a row (not yet committed) while the sync of `client_id` runs: the sync waits on that row's
    lock, then the write commits. The sync's outcomes."""
    outcome: list[Any] = []
    with psycopg.connect(projects.project_a_url) as holding:
        holding.execute(insert, params)
        syncing = threading.Thread(target=lambda: outcome.append(sync_service().sync_client(client_id)))
        syncing.start()
        wait_until_blocked(db, "client-sync-project_a")
        holding.commit()
    syncing.join(timeout=30)
    return outcome


def test_an_email_taken_while_the_copy_is_written_is_retried_then_a_conflict(
    projects: Any, db: Databases, reconfigure: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    """The upsert checks for the email's holder, but a holder not yet committed is not seen: the insert then
    waits on the unique index and fails with unique_violation when the holder commits. That is retried, and
    the retry sees the holder: a conflict, nothing written."""
    reconfigure(DB_LOCK_TIMEOUT_MS="10000")
    email = random_email("contested")
    client_id = new_project_b_client(db, email=email)
    holder = uuid.uuid4()
    outcome = sync_while_a_row_is_written(
        projects,
        db,
        client_id,
        "insert into public.clients (id, full_name, email, therapist_id, synced_from)"
        " values (%s, 'Holder', %s, %s, 'project_b')",
        (holder, email, THERAPIST),
    )

    assert [result.outcome for result in outcome] == ["conflict"]
    assert db.client(client_id) is None
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert {"project_a_retry", "sync_conflict"} <= {event["event"] for event in events}
    conflict = next(event for event in events if event["event"] == "sync_conflict")
    assert (conflict["conflict"], conflict["other_client_id"]) == ("email", str(holder))


def test_a_booking_holds_its_client_until_commit_so_an_archive_waits(projects: Any, db: Databases) -> None:
    """private.client_access locks the client FOR SHARE: an archive cannot slip in before the session insert."""
    client_id = synced_client(db, THERAPIST)
    with as_user(projects, THERAPIST) as booking:
        assert booking.execute("select private.client_access(%s)", (client_id,)).fetchone()[0] == "ok"
        with psycopg.connect(projects.project_a_url, autocommit=True) as archiving:
            archiving.execute("set lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                archiving.execute("update public.clients set status = 'archived' where id = %s", (client_id,))
    assert db.client(client_id)["status"] == "active"


def test_an_archive_committed_first_makes_the_booking_409(projects: Any, db: Databases) -> None:
    client_id = synced_client(db, THERAPIST)
    db.a.execute("update public.clients set status = 'archived' where id = %s", (client_id,))
    with as_user(projects, THERAPIST) as booking:
        answer = booking.execute("select public.create_session(%s, now())", (client_id,)).fetchone()[0]
    assert answer == {"outcome": "archived"}


def test_a_native_row_committed_while_the_copy_is_written_is_left_untouched(
    projects: Any, db: Databases, reconfigure: Callable[..., None]
) -> None:
    """Project A creates a client with the id while the sync inserts it: the insert waits for that row, then
    the upsert's guard skips it (it is not synced from Project B) and the answer is a conflict of kind id."""
    reconfigure(DB_LOCK_TIMEOUT_MS="10000")
    client_id = new_project_b_client(db, name="From Project B")
    outcome = sync_while_a_row_is_written(
        projects,
        db,
        client_id,
        "insert into public.clients (id, full_name, therapist_id) values (%s, 'Native', %s)",
        (client_id, THERAPIST),
    )

    assert [result.outcome for result in outcome] == ["conflict"]
    row = db.client(client_id)
    assert (row["full_name"], row["synced_from"], row["source_updated_at"]) == ("Native", None, None)


def test_a_user_removed_from_therapists_between_the_two_calls_copies_nothing(projects: Any, db: Databases) -> None:
    """book_session_as checks the therapist before it writes the copy it is given."""
    user = uuid.uuid4()
    db.a.execute("insert into auth.users (id) values (%s)", (user,))
    client_id = uuid.uuid4()
    copy = json.dumps({"full_name": "Copied", "source_attributes": {}, "source_updated_at": "2026-01-01T00:00:00Z"})
    with psycopg.connect(projects.project_a_url, autocommit=True) as service:
        service.execute("set role service_role")
        answer = service.execute(
            "select public.book_session_as(%s, %s, now(), 50, null, null, %s)",
            (json.dumps({"sub": str(user), "role": "authenticated"}), client_id, copy),
        ).fetchone()[0]
    assert answer == {"outcome": "not_a_therapist"}
    assert db.client(client_id) is None


def test_a_native_client_deleted_while_its_suggestion_is_recorded_is_skipped(projects: Any, db: Databases) -> None:
    """The upsert records a link suggestion for a native client with the user's email; its therapist deletes that
    client at the same moment. The suggestion is skipped (no foreign key error failing the whole upsert)."""
    email = random_email("deleted")
    native = uuid.uuid4()
    db.add_project_a_client(native, THERAPIST, "Native", email)
    client_id = new_project_b_client(db, email=email)

    outcome = sync_while_a_row_is_written(
        projects, db, client_id, "delete from public.clients where id = %s", (native,)
    )

    assert [result.outcome for result in outcome] == ["inserted"]
    assert db.count("a", "private.link_suggestions", "project_b_user_id = %s", (client_id,)) == 0
