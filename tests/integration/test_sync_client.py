"""sync_client against real Postgres, with moto for SQS: one client, backfill, reconcile, the queue consumer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

from devtools.tokens import sign_service_role_token
from tests.conftest import JWT_SECRET, OTHER_THERAPIST, THERAPIST, Databases
from tests.integration.helpers import EVENTS, ROOT, function_client, function_module
from tests.integration.test_create_session import NOT_FOUND
from tests.random_refs import random_email, random_name

pytestmark = pytest.mark.usefixtures("backend")

SERVICE = sign_service_role_token(JWT_SECRET)
ZERO_COUNTS = {"inserted": 0, "updated": 0, "unchanged": 0, "archived": 0, "conflicts": 0}

_ADD_CLIENTS = """
with users as (
  insert into auth.users (id, email)
  select gen_random_uuid(), 'bulk-' || gen_random_uuid() || '@example.test' from generate_series(1, %s)
  returning id
)
insert into public.profiles (id, name, age) select id, 'Bulk ' || left(id::text, 8), 30 from users returning id
"""


def add_clients(db: Databases, count: int) -> list[uuid.UUID]:
    return [row[0] for row in db.b.execute(_ADD_CLIENTS, (count,))]


def call(bearer: str, body: dict[str, Any]) -> Any:
    return function_client("sync_client").post("/", json=body, headers={"Authorization": f"Bearer {bearer}"})


def page_through(mode: str, **options: Any) -> tuple[dict[str, int], int]:
    """Every page of `mode` through HTTP as the service role: the summed counts and how many pages."""
    totals, pages, cursor = dict(ZERO_COUNTS), 0, None
    while True:
        response = call(SERVICE, {"mode": mode, "cursor": cursor, **options})
        assert response.status_code == 200, response.json
        pages += 1
        for key, value in response.json["counts"].items():
            totals[key] += value
        cursor = response.json["next_cursor"]
        if cursor is None:
            return totals, pages


def assert_a_equals_b(db: Databases) -> None:
    """Every Project B profile is an active client of Project A with its fields; every synced client of Project A
    whose profile is gone is archived."""
    source = {
        row[0]: (row[1], row[2])
        for row in db.b.execute(
            "select s.id, s.profile, s.updated_at from public.profiles p, lateral public.client_states(array[p.id]) s"
        )
    }
    stored = {
        row[0]: row[1:]
        for row in db.a.execute(
            "select id, full_name, email, source_attributes, source_updated_at, status from public.clients"
            " where synced_from = 'project_b'"
        )
    }
    for client_id, (profile, version) in source.items():
        expected = (
            (profile["name"] or "").strip() or "Unnamed client",
            profile["email"],
            {key: value for key, value in profile.items() if key not in ("name", "email")},
            version,
            "active",
        )
        assert stored.get(client_id) == expected, client_id
    gone = {client_id: row for client_id, row in stored.items() if client_id not in source}
    assert all(row[4] == "archived" for row in gone.values()), gone


# One client.


def test_a_therapist_syncs_a_client_that_becomes_theirs_but_not_another_therapists(
    fresh: Databases, token: Callable[..., str]
) -> None:
    new, unclaimed, theirs = add_clients(fresh, 3)
    assert call(SERVICE, {"client_id": str(unclaimed)}).json == {"outcome": "inserted", "client_id": str(unclaimed)}
    assert call(SERVICE, {"client_id": str(theirs)}).json["outcome"] == "inserted"
    fresh.a.execute("update public.clients set therapist_id = %s where id = %s", (OTHER_THERAPIST, theirs))

    mine = call(token(THERAPIST), {"client_id": str(new)})
    claimed = call(token(THERAPIST), {"client_id": str(unclaimed)})
    refused = [call(token(THERAPIST), {"client_id": str(client_id)}) for client_id in (theirs, uuid.uuid4())]

    assert (mine.status_code, mine.json) == (200, {"outcome": "inserted", "client_id": str(new)})
    assert (claimed.status_code, claimed.json["outcome"]) == (200, "unchanged")
    assert [(response.status_code, response.json) for response in refused] == [(404, NOT_FOUND)] * 2
    therapists = dict(fresh.a.execute("select id, therapist_id from public.clients").fetchall())
    assert therapists == {new: THERAPIST, unclaimed: THERAPIST, theirs: OTHER_THERAPIST}


def test_a_user_who_is_not_a_therapist_is_403_and_no_token_is_401(fresh: Databases, token: Callable[..., str]) -> None:
    (client_id,) = add_clients(fresh, 1)
    response = call(token(uuid.uuid4()), {"client_id": str(client_id)})
    assert (response.status_code, response.json["error"]["code"]) == (403, "not_a_therapist")
    anonymous = function_client("sync_client").post("/", json={"client_id": str(client_id)})
    assert anonymous.status_code == 401
    assert fresh.count("a", "public.clients") == 0


# Backfill and reconcile.


def test_a_backfill_of_10000_profiles_writes_each_once_and_again_changes_nothing(fresh: Databases) -> None:
    add_clients(fresh, 10_000)

    first, pages = page_through("backfill", limit=2000)
    again, _ = page_through("backfill", limit=5000)

    assert first == {**ZERO_COUNTS, "inserted": 10_000}
    assert pages == 6  # five full pages, then one that finds nothing more
    assert again == {**ZERO_COUNTS, "unchanged": 10_000}
    assert fresh.count("a", "public.clients") == 10_000
    assert_a_equals_b(fresh)


def test_reconcile_after_lost_events_leaves_project_a_equal_to_project_b(fresh: Databases) -> None:
    """The webhook is off: inserts, renames, email changes and deletes in Project B reach Project A only
    through reconcile; a profile gone without a deletion record only through a full one."""
    clients = add_clients(fresh, 300)
    page_through("backfill")
    assert page_through("reconcile")[0]["inserted"] == 0  # sets the watermark

    add_clients(fresh, 40)
    fresh.b.execute("update public.profiles set name = name || ' Renamed' where id = any(%s)", (clients[:50],))
    for client_id in clients[50:80]:
        fresh.b.execute("update auth.users set email = %s where id = %s", (random_email("moved"), client_id))
    fresh.b.execute("delete from public.profiles where id = any(%s)", (clients[80:100],))
    fresh.b.execute("delete from public.profiles where id = any(%s)", (clients[100:105],))
    fresh.b.execute("delete from private.profile_deletions where id = any(%s)", (clients[100:105],))

    counts, _ = page_through("reconcile", limit=25)

    assert (counts["inserted"], counts["updated"], counts["archived"]) == (40, 80, 20)
    active = "status = 'active' and id = any(%s)"
    assert fresh.count("a", "public.clients", active, (clients[100:105],)) == 5  # not recorded: not seen yet
    full, _ = page_through("reconcile", full=True)
    assert full["archived"] == 5
    assert_a_equals_b(fresh)
    assert page_through("reconcile", full=True)[0] == {**ZERO_COUNTS, "unchanged": full["unchanged"]}


_KILLABLE_BACKFILL = """
import sys
from shared.wiring import backfill_service
for page in backfill_service().backfill_pages(None, 100):  # the next page is read while this one is written
    print("cursor", page.next_cursor or "done", flush=True)
"""


def _wait_until_no_statement_runs(db: Databases, application_name: str, timeout: float = 30.0) -> None:
    """Until no backend of `application_name` in Project A is in a statement or a transaction (polls
    pg_stat_activity): a killed client's backend finishes (and commits) the statement it was running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = db.a.execute(
            "select count(*) from pg_stat_activity"
            " where datname = current_database() and application_name = %s and state <> 'idle'",
            (application_name,),
        ).fetchone()[0]
        if not busy:
            return
        time.sleep(0.01)
    raise AssertionError(f"a backend of {application_name} was still busy after {timeout} s")


def test_a_backfill_killed_between_pages_resumes_from_its_cursor_losing_and_duplicating_nothing(
    fresh: Databases,
) -> None:
    ids = add_clients(fresh, 1000)
    process = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _KILLABLE_BACKFILL],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    cursors: list[str] = []
    while len(cursors) < 3:  # the log lines (JSON) are on stdout too
        line = process.stdout.readline()
        assert line, "the backfill ended before its third page"
        if line.startswith("cursor "):
            cursors.append(line.split()[1])
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    _wait_until_no_statement_runs(fresh, "client-sync-project_a")  # a page in flight may still commit
    written_before = fresh.count("a", "public.clients")
    assert 300 <= written_before < 1000

    from shared.wiring import backfill_service

    resumed = dict(ZERO_COUNTS)
    for page in backfill_service().backfill_pages(cursors[-1], 100):
        for key, value in page.applied.counts().items():
            resumed[key] += value

    assert fresh.count("a", "public.clients") == 1000
    assert resumed["inserted"] + written_before == 1000  # nothing written twice
    assert resumed["unchanged"] == written_before - 300  # the pages written after the last cursor printed
    assert sorted(row[0] for row in fresh.a.execute("select id from public.clients")) == sorted(ids)
    assert_a_equals_b(fresh)


def test_backfill_pages_read_the_next_page_while_this_one_is_written(
    fresh: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_clients(fresh, 250)
    from shared.wiring import backfill_service

    backfill = backfill_service()
    read, apply = backfill.project_b.read_client_page, backfill.project_a.apply_sync_page
    started = threading.Condition()
    reads: list[object] = []
    overlapped: list[bool] = []

    def counted_read(*args: Any, **kwargs: Any) -> Any:
        with started:
            reads.append(args)
            started.notify_all()
        return read(*args, **kwargs)

    def write_once_the_next_read_started(*args: Any, **kwargs: Any) -> Any:
        page = len(overlapped)
        with started:  # the third page is the last: nothing to read after it
            overlapped.append(page == 2 or started.wait_for(lambda: len(reads) > page + 1, timeout=10))
        return apply(*args, **kwargs)

    monkeypatch.setattr(backfill.project_b, "read_client_page", counted_read)
    monkeypatch.setattr(backfill.project_a, "apply_sync_page", write_once_the_next_read_started)
    results = list(backfill.backfill_pages(None, 100))

    assert overlapped == [True, True, True]
    assert [result.applied.inserted for result in results] == [100, 100, 50]
    assert results[-1].next_cursor is None
    assert len(reads) == 3
    assert_a_equals_b(fresh)


def test_a_failed_write_stops_the_backfill_at_the_last_written_page(
    fresh: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sorted(add_clients(fresh, 300))
    from shared.errors import UpstreamUnavailable
    from shared.wiring import backfill_service

    backfill = backfill_service()
    apply = backfill.project_a.apply_sync_page
    writes: list[object] = []

    def second_write_fails(*args: Any, **kwargs: Any) -> Any:
        writes.append(args)
        if len(writes) > 1:
            raise UpstreamUnavailable("Project A is unavailable")
        return apply(*args, **kwargs)

    monkeypatch.setattr(backfill.project_a, "apply_sync_page", second_write_fails)
    cursors: list[str | None] = []
    with pytest.raises(UpstreamUnavailable):
        for page in backfill.backfill_pages(None, 100):
            cursors.append(page.next_cursor)
    monkeypatch.undo()

    assert cursors == [str(ids[99])]  # the page read ahead of the failed write is neither written nor passed
    assert fresh.count("a", "public.clients") == 100
    assert list(backfill.backfill_pages(cursors[0], 100))[-1].next_cursor is None
    assert_a_equals_b(fresh)


def test_dry_run_counts_and_writes_nothing(fresh: Databases) -> None:
    add_clients(fresh, 20)
    backfill = call(SERVICE, {"mode": "backfill", "dry_run": True})
    reconcile = call(SERVICE, {"mode": "reconcile", "dry_run": True})
    assert backfill.json == {"counts": {**ZERO_COUNTS, "inserted": 20}, "next_cursor": None}
    assert reconcile.json["counts"]["inserted"] == 20
    assert fresh.count("a", "public.clients") == 0
    assert fresh.a.execute("select count(*) from private.sync_state").fetchone()[0] == 0


@pytest.mark.parametrize(
    "body",
    [{"mode": "backfill"}, {"mode": "reconcile", "full": True}, {"mode": "backfill", "shards": 4}],
    ids=["backfill", "reconcile", "shards"],
)
def test_the_bulk_modes_are_the_service_roles_only(fresh: Databases, token: Callable[..., str], body: Any) -> None:
    add_clients(fresh, 3)
    for bearer in (token(THERAPIST), token(uuid.uuid4())):
        response = call(bearer, body)
        assert (response.status_code, response.json["error"]["code"]) == (403, "forbidden")
    assert fresh.count("a", "public.clients") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "sideways"},
        {"mode": "backfill", "limit": 0},
        {"mode": "backfill", "limit": 5001},
        {"mode": "backfill", "cursor": "not-a-cursor"},
        {"mode": "reconcile", "cursor": "changes:yesterday|x"},
        {"mode": "reconcile", "shards": 2},
        {"mode": "backfill", "shards": 1},
        {"client_id": "nope"},
        {"client_id": str(uuid.uuid4()), "extra": 1},
    ],
)
def test_bad_bodies_are_400(fresh: Databases, body: Any) -> None:
    response = call(SERVICE, body)
    assert (response.status_code, response.json["error"]["code"]) == (400, "invalid_request")


def test_a_page_without_a_limit_has_sync_page_size_clients(fresh: Databases, reconfigure: Callable[..., None]) -> None:
    add_clients(fresh, 5)
    reconfigure(SYNC_PAGE_SIZE="3")
    response = call(SERVICE, {"mode": "backfill"})
    assert response.json["counts"]["inserted"] == 3
    assert response.json["next_cursor"] is not None


def test_a_deeply_nested_body_is_400(fresh: Databases) -> None:
    response = function_client("sync_client").post(
        "/",
        data="[" * 20_000 + "]" * 20_000,
        headers={"Authorization": f"Bearer {SERVICE}", "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json["error"]["code"]) == (400, "invalid_request")


def test_a_page_with_an_email_conflict_writes_the_rest_and_reconcile_resolves_it(fresh: Databases) -> None:
    clients = add_clients(fresh, 5)
    taken = random_email("taken")
    fresh.b.execute("update auth.users set email = %s where id = %s", (taken, clients[2]))
    holder = uuid.uuid4()
    fresh.add_project_a_client(holder, THERAPIST, random_name("Holder"), taken, synced=True)

    counts, _ = page_through("backfill")

    assert (counts["inserted"], counts["conflicts"]) == (4, 1)
    assert fresh.client(clients[2]) is None
    open_conflicts = fresh.a.execute("select client_id, kind, other_client_id from private.sync_conflicts").fetchall()
    assert open_conflicts == [(clients[2], "email", holder)]

    assert page_through("reconcile")[0]["conflicts"] >= 1  # still taken: stays open (met by changes and retry)
    fresh.a.execute("update public.clients set email = null where id = %s", (holder,))
    page_through("reconcile")

    assert fresh.client(clients[2])["email"] == taken
    resolved = fresh.a.execute("select resolved_at is not null from private.sync_conflicts").fetchall()
    assert resolved == [(True,)]


def test_reconcile_retries_every_open_conflict_page_by_page(fresh: Databases, reconfigure: Callable[..., None]) -> None:
    clients = add_clients(fresh, 5)
    holders = [uuid.uuid4() for _ in clients]
    for client_id, holder in zip(clients, holders, strict=True):
        taken = random_email("taken")
        fresh.b.execute("update auth.users set email = %s where id = %s", (taken, client_id))
        fresh.add_project_a_client(holder, THERAPIST, random_name("Holder"), taken, synced=True)
    # Users Project B deleted: their archived copies keep the emails.
    fresh.a.execute("update public.clients set status = 'archived' where id = any(%s)", (holders,))
    assert page_through("reconcile")[0]["conflicts"] >= 5  # the watermark now stands after these profiles
    open_count = "resolved_at is null"
    assert fresh.count("a", "private.sync_conflicts", open_count) == 5

    fresh.a.execute("update public.clients set email = null where id = any(%s)", (holders,))
    reconfigure(RECONCILE_OVERLAP_SECONDS="0")  # nothing changed since the watermark: only the retry phase runs
    counts, pages = page_through("reconcile", limit=2)

    assert counts["inserted"] == 5
    assert pages == 4  # changes (none), then the open conflicts 2 + 2 + 1
    assert fresh.count("a", "private.sync_conflicts", open_count) == 0
    assert_a_equals_b(fresh)


# The queue (moto) and the schedule.


@pytest.fixture
def queue(aws: Any, reconfigure: Callable[..., None], fresh: Databases) -> Iterator[Any]:
    """moto's SQS (the `aws` fixture) with a queue, which the functions use for retries and jobs."""
    url = aws.create_queue(QueueName=f"sync-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    reconfigure(SYNC_RETRY_QUEUE_URL=url)
    yield aws, url


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A Lambda SQS event of these received messages, shaped as tests/events/sqs_batch.json."""
    template = json.loads((EVENTS / "sqs_batch.json").read_text())["Records"][0]
    return {
        "Records": [
            {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
            for m in messages
        ]
    }


def consume(sqs: Any, url: str, stop: threading.Event | None = None) -> int:
    """What Lambda's event source mapping does: batches of up to 10 to the handler, delete what succeeded."""
    handler, batches = function_module("sync_client").lambda_handler, 0
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not messages:
            return batches
        failed = {f["itemIdentifier"] for f in handler(sqs_event(messages), None)["batchItemFailures"]}
        batches += 1
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_a_batch_with_one_poisoned_message_reports_exactly_that_one(fresh: Databases, queue: Any) -> None:
    first, second = add_clients(fresh, 2)
    event = sqs_event(
        [
            {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": json.dumps({"client_id": str(first), **_EVENT})},
            {"MessageId": "m-2", "ReceiptHandle": "r-2", "Body": "{not json"},
            {"MessageId": "m-3", "ReceiptHandle": "r-3", "Body": json.dumps({"client_id": "nope", **_EVENT})},
            {"MessageId": "m-4", "ReceiptHandle": "r-4", "Body": json.dumps({"client_id": str(second), **_EVENT})},
        ]
    )
    answer = function_module("sync_client").lambda_handler(event, None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-3"}]}
    assert fresh.client(first) is not None and fresh.client(second) is not None


_EVENT = {"table": "public.profiles", "type": "INSERT"}


def test_a_queued_webhook_event_is_applied_by_the_consumer(
    fresh: Databases, queue: Any, reconfigure: Callable[..., None]
) -> None:
    from tests.integration.test_create_session_faults import UNREACHABLE
    from tests.integration.test_project_b_webhook import deliver, payload

    sqs, url = queue
    (client_id,) = add_clients(fresh, 1)
    functions_a = os.environ["PROJECT_A_DB_URL"]
    reconfigure(PROJECT_A_DB_URL=UNREACHABLE, DB_POOL_TIMEOUT_SECONDS="0.3", RETRY_ATTEMPTS="2")
    assert deliver(function_client("project_b_webhook"), payload("UPDATE", client_id)).status_code == 202
    reconfigure(PROJECT_A_DB_URL=functions_a)

    assert consume(sqs, url) == 1
    assert fresh.client(client_id)["status"] == "active"


def test_a_sharded_backfill_drained_by_two_concurrent_consumers_converges(
    fresh: Databases, queue: Any, reconfigure: Callable[..., None]
) -> None:
    sqs, url = queue
    add_clients(fresh, 600)
    # Small pages and a budget that ends a job after one page: every job queues its remainder at least once.
    reconfigure(SYNC_PAGE_SIZE="40", SYNC_JOB_BUDGET_SECONDS="0.001")
    assert call(SERVICE, {"mode": "backfill", "shards": 4}).json == {"queued": 4}

    batches: list[int] = []
    consumers = [threading.Thread(target=lambda: batches.append(consume(sqs, url))) for _ in range(2)]
    for consumer in consumers:
        consumer.start()
    for consumer in consumers:
        consumer.join(timeout=120)
    while consume(sqs, url):  # one consumer may have found the queue empty while the other was requeueing
        pass

    assert sum(batches) >= 2  # the remainders came back as later batches
    assert fresh.count("a", "public.clients") == 600
    assert_a_equals_b(fresh)


class LambdaContext:
    """What the handler reads of Lambda's context: the invocation's time left, running out as time passes."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.ends - time.monotonic()) * 1000), 0)


def test_jobs_of_a_batch_share_the_invocation_and_one_left_no_time_goes_back_whole(
    fresh: Databases, queue: Any
) -> None:
    sqs, url = queue
    add_clients(fresh, 50)
    assert call(SERVICE, {"mode": "backfill", "shards": 2}).json == {"queued": 2}
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert len(messages) == 2
    handler = function_module("sync_client").lambda_handler
    margin = function_module("sync_client").STOP_MARGIN_SECONDS

    answer = handler(sqs_event(messages), LambdaContext(margin))  # nothing left beyond the margin

    assert answer == {"batchItemFailures": []}
    assert fresh.count("a", "public.clients") == 0
    requeued = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert sorted(m["Body"] for m in requeued) == sorted(m["Body"] for m in messages)  # whole: no cursor

    assert handler(sqs_event(requeued), LambdaContext(margin + 60)) == {"batchItemFailures": []}
    assert fresh.count("a", "public.clients") == 50


def test_the_schedule_reconciles_and_keeps_the_watermark(fresh: Databases) -> None:
    add_clients(fresh, 30)
    event = json.loads((EVENTS / "schedule.json").read_text())

    answer = function_module("sync_client").lambda_handler(event, None)

    assert answer == {"counts": {**ZERO_COUNTS, "inserted": 30}, "finished": True}
    assert fresh.a.execute("select count(*) from private.sync_state where name = 'reconcile'").fetchone()[0] == 1
    again = function_module("sync_client").lambda_handler(event, None)
    assert again["counts"]["inserted"] == 0


def test_a_client_in_lambda_http_event_is_synced(fresh: Databases) -> None:
    (client_id,) = add_clients(fresh, 1)
    event = json.loads((EVENTS / "create_session.json").read_text())
    event["rawPath"] = "/sync"
    event["requestContext"]["http"]["path"] = "/sync"
    event["headers"]["authorization"] = f"Bearer {SERVICE}"
    event["body"] = json.dumps({"client_id": str(client_id)})
    answer = function_module("sync_client").lambda_handler(event, None)
    assert (answer["statusCode"], json.loads(answer["body"])["outcome"]) == (200, "inserted")


def test_sync_client_is_served_by_functions_framework(projects: Any) -> None:
    client: FlaskClient = function_client("sync_client")
    assert client.get("/").status_code == 405


def test_a_change_stamped_before_the_watermark_but_committed_after_it_is_not_missed(fresh: Databases) -> None:
    """A slow transaction stamps its change first and commits last: the overlap makes reconcile read it."""
    slow_one, quick_one = add_clients(fresh, 2)
    page_through("backfill")
    page_through("reconcile")
    with psycopg.connect(fresh.b.info.dsn) as slow:
        slow.execute("update public.profiles set name = 'Slow Rename' where id = %s", (slow_one,))  # stamped now
        fresh.b.execute("update public.profiles set name = 'Quick Rename' where id = %s", (quick_one,))
        assert page_through("reconcile")[0]["updated"] == 1  # the watermark passes the slow change's stamp
        slow.commit()

    assert page_through("reconcile")[0]["updated"] == 1
    assert fresh.client(slow_one)["full_name"] == "Slow Rename"


def test_the_watermark_never_moves_back(fresh: Databases) -> None:
    add_clients(fresh, 3)
    page_through("reconcile")
    (kept,) = fresh.a.execute("select watermark from private.sync_state where name = 'reconcile'").fetchone()
    with psycopg.connect(fresh.a.info.dsn, autocommit=True) as service:
        service.execute("set role service_role")
        service.execute(
            "select public.apply_sync_page('[]', '[]', 'reconcile', %s, %s)", (kept.replace(year=2000), uuid.uuid4())
        )
    assert fresh.a.execute("select watermark from private.sync_state").fetchone() == (kept,)
