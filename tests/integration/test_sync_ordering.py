"""Out-of-order safety of the synced-client upsert and the archive, at the store (the SQL itself)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from shared.models import SourceClient
from shared.ports import ClientOutcome
from shared.wiring import sync_service
from tests.conftest import Databases
from tests.integration.helpers import OneClientAtATime
from tests.random_refs import random_email

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(projects: Any) -> OneClientAtATime:
    return OneClientAtATime()


def state(client_id: uuid.UUID, name: str, at: datetime, email: str | None = None) -> Any:
    return SourceClient(
        id=client_id, profile={"name": name, "email": email or f"{client_id.hex}@example.test"}, updated_at=at
    )


def test_a_newer_state_with_the_same_content_moves_the_version_so_a_late_older_one_is_ignored(
    store: OneClientAtATime, db: Databases
) -> None:
    client_id, email = uuid.uuid4(), random_email("same")
    assert store.upsert(state(client_id, "A", T0, email)).outcome == "inserted"
    assert store.upsert(state(client_id, "A", T0 + timedelta(seconds=3), email)).outcome == "updated"
    assert store.upsert(state(client_id, "B", T0 + timedelta(seconds=2), email)).outcome == "unchanged"
    row = db.client(client_id)
    assert (row["full_name"], row["source_updated_at"]) == ("A", T0 + timedelta(seconds=3))


def test_a_stale_state_does_not_resolve_an_open_conflict(store: OneClientAtATime, db: Databases) -> None:
    client_id, taken = uuid.uuid4(), random_email("held")
    db.add_project_a_client(uuid.uuid4(), None, "Holder", taken, synced=True)
    assert store.upsert(state(client_id, "A", T0)).outcome == "inserted"
    assert store.upsert(state(client_id, "A", T0 + timedelta(seconds=5), taken)).outcome == "conflict"
    assert store.upsert(state(client_id, "A", T0)).outcome == "unchanged"  # a late delivery of the first state
    open_conflict = "client_id = %s and resolved_at is null"
    assert db.count("a", "private.sync_conflicts", open_conflict, (client_id,)) == 1


def test_an_older_state_sent_after_a_newer_one_is_ignored(store: OneClientAtATime, db: Databases) -> None:
    client_id = uuid.uuid4()
    assert store.upsert(state(client_id, "Newest", T0 + timedelta(seconds=2))).outcome == "inserted"
    assert store.upsert(state(client_id, "Older", T0 + timedelta(seconds=1))).outcome == "unchanged"
    assert store.upsert(state(client_id, "Oldest", T0)).outcome == "unchanged"
    row = db.client(client_id)
    assert row["full_name"] == "Newest"
    assert row["source_updated_at"] == T0 + timedelta(seconds=2)


def test_a_newer_state_replaces_an_older_one(store: OneClientAtATime, db: Databases) -> None:
    client_id = uuid.uuid4()
    store.upsert(state(client_id, "First", T0))
    assert store.upsert(state(client_id, "Second", T0 + timedelta(seconds=1))).outcome == "updated"
    assert db.client(client_id)["full_name"] == "Second"


def test_an_archive_observed_before_the_stored_state_is_ignored(store: OneClientAtATime, db: Databases) -> None:
    client_id = uuid.uuid4()
    store.upsert(state(client_id, "Back Again", T0 + timedelta(seconds=5)))
    assert store.archive(client_id, T0 + timedelta(seconds=4)) == "unchanged"
    assert db.client(client_id)["status"] == "active"
    assert store.archive(client_id, T0 + timedelta(seconds=6)) == "archived"
    assert db.client(client_id)["status"] == "archived"


def test_clients_of_project_a_alone_are_never_archived(store: OneClientAtATime, db: Databases) -> None:
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, uuid.uuid4(), "Local Only")
    assert store.archive(client_id, T0 + timedelta(days=3650)) == "unchanged"
    assert db.client(client_id)["status"] == "active"


def test_email_of_another_client_is_a_conflict_not_a_race(store: OneClientAtATime, db: Databases) -> None:
    email = random_email()
    holder, newcomer = uuid.uuid4(), uuid.uuid4()
    store.upsert(state(holder, "Holder", T0, email))
    applied = store.upsert(state(newcomer, "Newcomer", T0, email.upper()))
    assert applied == ClientOutcome(client_id=newcomer, outcome="conflict", conflict="email", other_client_id=holder)
    assert db.client(newcomer) is None


def test_an_email_change_and_a_rename_at_once_both_reach_project_a(projects: Any, db: Databases) -> None:
    """Both changes land on the profile row's version: the second writer waits for the first and is newer."""
    import threading
    import time

    import psycopg

    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, "Before Rename", random_email("before"))
    service = sync_service()
    assert service.sync_client(client_id).outcome == "inserted"
    new_email = random_email("after")

    with psycopg.connect(projects.project_b_url) as email_change:
        email_change.execute("update auth.users set email = %s where id = %s", (new_email, client_id))
        with psycopg.connect(projects.project_b_url, autocommit=True) as rename:
            renamer = threading.Thread(
                target=rename.execute,
                args=("update public.profiles set name = 'After Rename' where id = %s", (client_id,)),
            )
            renamer.start()
            deadline = time.monotonic() + 10
            while not db.b.execute(
                "select count(*) from pg_stat_activity where pid = %s and wait_event_type = 'Lock'",
                (rename.info.backend_pid,),
            ).fetchone()[0]:
                assert time.monotonic() < deadline, "the rename did not wait for the email change"
                time.sleep(0.01)
            assert service.sync_client(client_id).outcome == "unchanged"  # nothing committed yet
            email_change.commit()
            renamer.join(timeout=10)

    assert service.sync_client(client_id).outcome == "updated"
    row, source = db.client(client_id), db.source(client_id)
    assert (row["full_name"], row["email"]) == ("After Rename", new_email)
    assert row["source_updated_at"] == source["updated_at"]


def test_a_read_that_missed_an_uncommitted_return_does_not_archive_it(
    projects: Any, store: OneClientAtATime, db: Databases
) -> None:
    """The archive compares with the profile's deletion, not with when a read found it missing."""
    import psycopg

    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, "Comes Back", random_email("back"))
    service = sync_service()
    assert service.sync_client(client_id).outcome == "inserted"
    db.b.execute("delete from public.profiles where id = %s", (client_id,))
    assert service.sync_client(client_id).outcome == "archived"

    with psycopg.connect(projects.project_b_url) as returning:
        returning.execute("insert into public.profiles (id, name) values (%s, 'Came Back')", (client_id,))
        stale = store.read(client_id)  # misses the uncommitted insert
        assert stale.client is None
    assert service.sync_client(client_id).outcome == "updated"  # the return's own event

    assert store.archive(client_id, stale.absence) == "unchanged"  # the stale read's event
    assert db.client(client_id)["status"] == "active"
    assert db.client(client_id)["full_name"] == "Came Back"


def test_a_state_read_before_a_deletion_and_written_after_the_archive_does_not_bring_the_client_back(
    projects: Any, store: OneClientAtATime, db: Databases
) -> None:
    """The archive stores the deletion as the version: an older state, however late, is older than that."""

    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, "First", random_email("late"))
    service = sync_service()
    assert service.sync_client(client_id).outcome == "inserted"
    db.b.execute("update public.profiles set name = 'Renamed' where id = %s", (client_id,))
    slow_read = store.read(client_id)  # a delivery that stalls after reading
    db.b.execute("delete from public.profiles where id = %s", (client_id,))
    assert service.sync_client(client_id).outcome == "archived"

    assert slow_read.client is not None
    assert store.upsert(slow_read.client).outcome == "unchanged"
    assert db.client(client_id)["status"] == "archived"

    db.b.execute("insert into public.profiles (id, name) values (%s, 'Back')", (client_id,))
    assert service.sync_client(client_id).outcome == "updated"
    assert (db.client(client_id)["status"], db.client(client_id)["full_name"]) == ("active", "Back")


def test_two_clients_of_one_page_with_one_email_the_first_by_id_takes_it(projects: Any, db: Databases) -> None:
    email = random_email("twice")
    first, second = sorted([uuid.uuid4(), uuid.uuid4()])
    rows = [
        {"id": str(client_id), "profile": {"name": name, "email": email}, "updated_at": T0.isoformat()}
        for client_id, name in ((second, "Second"), (first, "First"))
    ]
    with psycopg.connect(projects.project_a_functions_url, autocommit=True) as conn:
        answer = conn.execute(
            "select client_id, outcome, conflict, other_client_id from public.upsert_synced_clients(%s)",
            (json.dumps(rows),),
        ).fetchall()
    assert answer == [(first, "inserted", None, None), (second, "conflict", "email", first)]
    assert db.client(second) is None
