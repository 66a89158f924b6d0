"""Versions from Project B cannot run ahead of time: a profile's updated_at of 'infinity' or of year 9999,
written as a user could before Project B's trigger existed, never becomes a stored version or reconcile's
watermark; the client is still synced through the webhook, a booking and reconcile, and logged by id."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from devtools.localdb import create_database
from ops.migrate import apply_migrations, migration_files
from shared.ports import Watermark
from tests.conftest import THERAPIST, Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session import book
from tests.integration.test_project_b_webhook import deliver, payload
from tests.integration.test_sync_client import add_clients, page_through
from tests.random_refs import random_suffix

BAD_VERSIONS = pytest.mark.parametrize("bad", ["infinity", "9999-12-31 23:59:59+00"], ids=["infinity", "year_9999"])
SKEW = timedelta(seconds=60)  # MAX_VERSION_SKEW_SECONDS's default


def write_version(conn: psycopg.Connection, client_id: Any, version: str) -> None:
    """Write a profile's updated_at as a user could before advance_updated_at existed: the trigger off for it."""
    with conn.transaction():
        conn.execute("alter table public.profiles disable trigger profiles_advance_updated_at")
        conn.execute("update public.profiles set updated_at = %s::timestamptz where id = %s", (version, client_id))
        conn.execute("alter table public.profiles enable trigger profiles_advance_updated_at")


def logged(capsys: pytest.CaptureFixture[str], event: str) -> list[dict[str, str]]:
    return [line for line in map(json.loads, capsys.readouterr().out.splitlines()) if line["event"] == event]


def latest_allowed(conn: psycopg.Connection) -> datetime:
    return conn.execute("select clock_timestamp()").fetchone()[0] + SKEW


def watermark(db: Databases) -> datetime:
    return db.a.execute("select watermark from private.sync_state where name = 'reconcile'").fetchone()[0]


def stored_versions(db: Databases) -> list[datetime]:
    """Every synced client's source_updated_at (psycopg cannot load an infinite one: the query would fail)."""
    return [row[0] for row in db.a.execute("select source_updated_at from public.clients")]


@BAD_VERSIONS
def test_a_bad_version_is_clamped_through_the_webhook_a_booking_and_reconcile_and_later_changes_arrive(
    fresh: Databases, token: Callable[..., str], capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    hooked, booked, reconciled = add_clients(fresh, 3)
    for client_id in (hooked, booked, reconciled):
        write_version(fresh.b, client_id, bad)
    capsys.readouterr()

    hook = deliver(function_client("project_b_webhook"), payload("UPDATE", hooked))
    clamped = logged(capsys, "version_clamped")
    booking = book(function_client("create_session"), token(THERAPIST), booked)
    clamped += logged(capsys, "version_clamped")
    counts, _ = page_through("reconcile")
    clamped += logged(capsys, "version_clamped")

    assert (hook.status_code, hook.json["outcome"]) == (200, "inserted")
    assert (booking.status_code, booking.json["client_synced"]) == (201, True)
    assert counts["inserted"] == 1  # `reconciled`; the other two are written again with a later read's version
    limit = latest_allowed(fresh.a)
    assert all(version <= limit for version in stored_versions(fresh))
    assert watermark(fresh) <= limit
    # Logged by each path (the webhook's, the booking's, then reconcile's, which reads all three), by id only.
    assert [line["client_id"] for line in clamped[:2]] == [str(hooked), str(booked)]
    assert {line["client_id"] for line in clamped[2:]} == {str(hooked), str(booked), str(reconciled)}
    assert all(set(line) <= {"level", "event", "client_id", "therapist_id"} for line in clamped)

    (later,) = add_clients(fresh, 1)
    assert page_through("reconcile")[0]["inserted"] == 1
    assert fresh.client(later) is not None
    assert watermark(fresh) <= latest_allowed(fresh.a)


@BAD_VERSIONS
def test_project_b_reads_a_bad_version_as_the_time_of_reading(fresh: Databases, bad: str) -> None:
    (client_id,) = add_clients(fresh, 1)
    write_version(fresh.b, client_id, bad)
    state = fresh.b.execute(
        "select updated_at, read_at, version_clamped from public.client_states(array[%s]::uuid[])", (client_id,)
    ).fetchone()
    page = fresh.b.execute("select clients from public.client_page(null, 10)").fetchone()[0]
    changes = fresh.b.execute(
        "select clients, last_version from public.client_changes('-infinity', null, 10)"
    ).fetchone()

    limit = latest_allowed(fresh.b)
    assert state[0] == state[1] and state[2] is True
    assert [(datetime.fromisoformat(row["updated_at"]) <= limit, row.get("version_clamped")) for row in page] == [
        (True, True)
    ]
    assert changes[0][0]["version_clamped"] is True
    assert datetime.fromisoformat(changes[0][0]["updated_at"]) <= limit
    assert changes[1] <= limit


@BAD_VERSIONS
def test_a_write_after_a_bad_version_is_stamped_now(fresh: Databases, bad: str) -> None:
    (client_id,) = add_clients(fresh, 1)
    write_version(fresh.b, client_id, bad)
    fresh.b.execute("update public.profiles set name = 'Renamed' where id = %s", (client_id,))
    fresh.b.execute("update auth.users set email = 'renamed@example.test' where id = %s", (client_id,))
    version = fresh.b.execute("select updated_at from public.profiles where id = %s", (client_id,)).fetchone()[0]
    assert version <= fresh.b.execute("select clock_timestamp()").fetchone()[0]


def test_project_a_stores_no_bad_version_or_watermark_whoever_calls(fresh: Databases) -> None:
    """Project A's own guard, for a caller that passes Project B's versions unread (its JSON as given)."""
    from shared.wiring import projects

    project_a, _ = projects()
    infinite, future = uuid.uuid4(), uuid.uuid4()
    page = [
        {"id": str(infinite), "profile": {"name": "Infinite"}, "updated_at": "infinity"},
        {"id": str(future), "profile": {"name": "Future"}, "updated_at": "9999-12-31T00:00:00+00:00"},
    ]
    ahead = Watermark(datetime(9999, 12, 31, tzinfo=UTC), future)

    counts = project_a.apply_sync_page(json.dumps(page), "[]", ahead)

    assert counts.inserted == 2
    assert {(bounded.client_id, bounded.notices) for bounded in counts.bounded} == {
        (infinite, ("version_clamped",)),
        (future, ("version_clamped",)),
    }
    limit = latest_allowed(fresh.a)
    assert all(version <= limit for version in stored_versions(fresh))
    assert watermark(fresh) <= limit
    fresh.a.execute("select private.advance_watermark('other', '-infinity', %s)", (future,))
    assert fresh.count("a", "private.sync_state", "name = 'other'") == 0  # -infinity never moves a watermark
    fresh.a.execute("select private.advance_watermark('other', 'infinity', %s)", (future,))
    assert fresh.a.execute("select watermark from private.sync_state where name = 'other'").fetchone()[0] <= limit


def test_the_skew_is_the_setting(
    fresh: Databases, reconfigure: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    """A version 30 s ahead is within the default skew (60 s), and clamped with MAX_VERSION_SKEW_SECONDS=0."""
    within, clamped = add_clients(fresh, 2)
    for client_id in (within, clamped):
        write_version(fresh.b, client_id, (datetime.now(UTC) + timedelta(seconds=30)).isoformat())
    webhook = function_client("project_b_webhook")
    assert deliver(webhook, payload("UPDATE", within)).status_code == 200
    capsys.readouterr()

    reconfigure(MAX_VERSION_SKEW_SECONDS="0")
    assert deliver(function_client("project_b_webhook"), payload("UPDATE", clamped)).status_code == 200

    versions = dict(fresh.a.execute("select id, source_updated_at from public.clients").fetchall())
    now = fresh.a.execute("select clock_timestamp()").fetchone()[0]
    assert versions[within] > now
    assert versions[clamped] <= now
    assert [line["client_id"] for line in logged(capsys, "version_clamped")] == [str(clamped)]


def test_the_migrations_bring_what_is_stored_back_within_the_bounds(
    projects: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both projects migrated to before these changes, given bad versions and a client over the bounds, then
    migrated on."""
    every = migration_files
    monkeypatch.setattr(
        "ops.migrate.migration_files", lambda project: [p for p in every(project) if p.name < "2026120300"]
    )
    prefix = f"test_{random_suffix()}_versions_"
    urls = {project: create_database(projects.server_url, prefix + project) for project in ("project_a", "project_b")}
    for project, url in urls.items():
        apply_migrations(url, project, local=True)
    client_id, profile_id = uuid.uuid4(), uuid.uuid4()
    with (
        psycopg.connect(urls["project_b"], autocommit=True) as b,
        psycopg.connect(urls["project_a"], autocommit=True) as a,
    ):
        b.execute("insert into auth.users (id, email) values (%s, 'run-ahead@example.test')", (profile_id,))
        b.execute("insert into public.profiles (id, name) values (%s, 'Run ahead')", (profile_id,))
        write_version(b, profile_id, "infinity")
        a.execute(
            "insert into public.clients (id, full_name, synced_from, source_updated_at, source_attributes)"
            " values (%s, repeat('n', 300), 'project_b', 'infinity', '{\"avatar_url\": \"javascript:alert(1)\"}')",
            (client_id,),
        )
        a.execute(
            "insert into private.sync_state (name, watermark, watermark_id, updated_at) values ('reconcile',"
            " '9999-12-31', %s, now() - interval '1 day')",
            (client_id,),
        )
        monkeypatch.undo()
        for project, url in urls.items():
            apply_migrations(url, project, local=True)

        assert b.execute("select updated_at <= now() from public.profiles").fetchone()[0] is True
        stored = a.execute("select source_updated_at, full_name, source_attributes from public.clients").fetchone()
        assert stored == (None, "n" * 200, {"avatar_url": None})
        kept = a.execute("select watermark <= now() - interval '23 hours' from private.sync_state").fetchone()[0]
        assert kept is True
