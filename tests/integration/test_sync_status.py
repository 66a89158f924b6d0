"""sync_client's status mode and the CLI's status: the watermark and the lag behind Project B, the last backfill
and reconcile (as each records itself), the open conflicts and link suggestions, and the queue's depths."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from devtools.tokens import sign_service_role_token
from ops.cli.main import main
from tests.conftest import JWT_SECRET, THERAPIST, Databases
from tests.integration.helpers import EVENTS, function_client, function_module
from tests.integration.test_sync_client import add_clients, consume, sqs_event
from tests.random_refs import random_email, random_name

pytestmark = pytest.mark.usefixtures("backend")

SERVICE = sign_service_role_token(JWT_SECRET)
# Each of these builds fresh databases; on the client backend each fresh pair keeps its PostgREST stand-ins (and
# their connections) for the session, so only the first two tests here run on both backends.
FRESH_ONCE = pytest.mark.direct_only("builds fresh databases; the first two tests here cover the client backend")
ZERO = {"inserted": 0, "updated": 0, "unchanged": 0, "archived": 0, "conflicts": 0}


def call(bearer: str, body: dict[str, Any]) -> Any:
    return function_client("sync_client").post("/", json=body, headers={"Authorization": f"Bearer {bearer}"})


def status() -> dict[str, Any]:
    answer = call(SERVICE, {"mode": "status"})
    assert answer.status_code == 200, answer.json
    return dict(answer.json)


def pages(mode: str, limit: int) -> int:
    """A backfill or reconcile over HTTP, page after page, as an operator drives it; how many pages."""
    cursor, count = None, 0
    while True:
        body: dict[str, Any] = {"mode": mode, "limit": limit} | ({"cursor": cursor} if cursor else {})
        page = call(SERVICE, body)
        assert page.status_code == 200, page.json
        count += 1
        cursor = page.json["next_cursor"]
        if cursor is None:
            return count


def test_before_anything_ran_the_status_is_empty(fresh: Databases) -> None:
    assert status() == {
        "watermark": None,
        "lag_seconds": None,
        "last_reconcile": None,
        "last_backfill": None,
        "open_conflicts": 0,
        "open_link_suggestions": 0,
        "queue": None,
    }


def test_a_backfill_and_a_reconcile_by_pages_are_each_one_run_and_the_lag_is_the_watermarks_age(
    fresh: Databases,
) -> None:
    add_clients(fresh, 25)
    fresh.b.execute("set session_replication_role = replica")  # past versions: the trigger would stamp now
    fresh.b.execute("update public.profiles set updated_at = now() - interval '1 hour'")
    fresh.b.execute("set session_replication_role = origin")
    assert pages("backfill", 10) == 3
    assert pages("reconcile", 10) == 4  # changes (25 in pages of 10), then the open conflicts: none

    found = status()
    backfill = found["last_backfill"]
    assert backfill["counts"] == {**ZERO, "inserted": 25}
    assert (backfill["parts"], backfill["parts_done"]) == (1, 1) and backfill["finished_at"] is not None
    reconcile = found["last_reconcile"]
    assert reconcile["finished_at"] is not None and reconcile["counts"] == {**ZERO, "unchanged": 25}
    assert found["watermark"] is not None
    assert 3590 < found["lag_seconds"] < 3700


@FRESH_ONCE
def test_a_new_run_replaces_the_last_and_a_page_from_a_cursor_adds_to_it(fresh: Databases) -> None:
    add_clients(fresh, 15)
    first = call(SERVICE, {"mode": "backfill", "limit": 10})
    partway = status()["last_backfill"]
    call(SERVICE, {"mode": "backfill", "limit": 10, "cursor": first.json["next_cursor"]})
    done = status()["last_backfill"]
    call(SERVICE, {"mode": "backfill", "limit": 10, "dry_run": True})  # a dry run records nothing
    after_dry_run = status()["last_backfill"]
    again = call(SERVICE, {"mode": "backfill", "limit": 100})

    assert partway["finished_at"] is None and partway["counts"]["inserted"] == 10
    assert done["finished_at"] is not None and done["counts"]["inserted"] == 15
    assert after_dry_run == done
    assert again.status_code == 200
    last = status()["last_backfill"]
    assert last["counts"] == {**ZERO, "unchanged": 15} and last["started_at"] > done["started_at"]


@FRESH_ONCE
def test_the_scheduled_reconcile_records_its_run(fresh: Databases) -> None:
    add_clients(fresh, 5)
    function_module("sync_client").lambda_handler(json.loads((EVENTS / "schedule.json").read_text()), None)

    reconcile = status()["last_reconcile"]
    assert reconcile["counts"] == {**ZERO, "inserted": 5} and reconcile["finished_at"] is not None


@FRESH_ONCE
def test_a_sharded_backfill_finishes_when_its_last_range_does_and_the_queue_is_counted(
    fresh: Databases, aws: Any, reconfigure: Callable[..., None]
) -> None:
    url = aws.create_queue(QueueName=f"sync-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dead = aws.create_queue(QueueName=f"dead-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    reconfigure(SYNC_RETRY_QUEUE_URL=url, SYNC_DEAD_LETTER_QUEUE_URL=dead)
    add_clients(fresh, 40)
    aws.send_message(QueueUrl=dead, MessageBody=json.dumps({"client_id": str(uuid.uuid4())}))
    assert call(SERVICE, {"mode": "backfill", "shards": 3}).json == {"queued": 3}
    queued = status()
    (message, *_) = aws.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    one_in_flight = status()
    function_module("sync_client").lambda_handler(sqs_event([message]), None)
    one_done = status()["last_backfill"]
    while consume(aws, url):
        pass

    assert queued["queue"] == {"visible": 3, "in_flight": 0, "dead_letter": 1}
    assert queued["last_backfill"] == {**queued["last_backfill"], "parts": 3, "parts_done": 0, "finished_at": None}
    assert one_in_flight["queue"] == {"visible": 2, "in_flight": 1, "dead_letter": 1}
    assert (one_done["parts_done"], one_done["finished_at"]) == (1, None)
    finished = status()["last_backfill"]
    assert (finished["parts_done"], finished["counts"]["inserted"]) == (3, 40) and finished["finished_at"]


@FRESH_ONCE
def test_open_conflicts_and_link_suggestions_are_counted(fresh: Databases) -> None:
    native_id = uuid.uuid4()  # a Project B user with a native client's id: a conflict of kind id
    fresh.add_project_a_client(native_id, THERAPIST, random_name("Native"))
    fresh.add_project_b_client(native_id, random_name("Same id"), random_email("same-id"))
    email = random_email("pair")  # a Project B user with a native client's email: a link suggestion
    fresh.add_project_a_client(uuid.uuid4(), THERAPIST, random_name("Native"), email)
    fresh.add_project_b_client(uuid.uuid4(), random_name("Signed up"), email)
    pages("backfill", 100)

    found = status()
    assert (found["open_conflicts"], found["open_link_suggestions"]) == (1, 1)


def test_the_status_is_for_the_service_role_and_takes_no_other_field(token: Callable[..., str]) -> None:
    therapist = call(token(THERAPIST), {"mode": "status"})
    extra = call(SERVICE, {"mode": "status", "verbose": True})

    assert (therapist.status_code, therapist.json["error"]["code"]) == (403, "forbidden")
    assert (extra.status_code, extra.json["error"]["code"]) == (400, "invalid_request")


@FRESH_ONCE
def test_the_cli_records_its_backfill_and_prints_the_status_as_a_table(
    fresh: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    add_clients(fresh, 3)
    assert main(["backfill", "--limit", "2"], terminal=False) == 0
    capsys.readouterr()

    code = main(["status"], terminal=False)

    out = capsys.readouterr().out
    assert code == 0
    assert "Sync status" in out and "last backfill" in out and "inserted 3" in out
    assert "- (no reconcile yet)" in out and "- (none configured)" in out
    backfill = status()["last_backfill"]
    assert backfill["counts"]["inserted"] == 3 and backfill["finished_at"] is not None


def test_a_sharded_backfill_without_a_queue_is_503_and_records_no_run(db: Databases) -> None:
    def runs() -> list[Any]:
        return db.a.execute("select * from private.sync_runs order by kind").fetchall()

    before = runs()

    answer = call(SERVICE, {"mode": "backfill", "shards": 4})

    assert (answer.status_code, answer.json["error"]["code"]) == (503, "queue_not_configured")
    assert "Retry-After" not in answer.headers  # trying again does not help: it is the configuration
    assert runs() == before
