"""What the functions write as CloudWatch metrics (the embedded metric format, on stdout): the sync's outcomes,
an SQS batch's failed records, and the scheduled reconcile's lag."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Databases
from tests.integration.helpers import EVENTS, function_client, function_module
from tests.integration.test_project_b_webhook import deliver, payload
from tests.integration.test_sync_client import add_clients, sqs_event
from tests.random_refs import random_email, random_name


def emitted(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"] == "metrics" and "_aws" in line]


def test_a_webhook_event_writes_its_outcome_under_its_function(
    db: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name("Metric"), random_email("metric"))
    capsys.readouterr()

    deliver(function_client("project_b_webhook"), payload("INSERT", client_id))

    (document,) = emitted(capsys.readouterr().out)
    assert (document["Function"], document["Inserted"]) == ("project_b_webhook", 1)


def test_the_scheduled_reconcile_writes_its_outcomes_and_a_lag_of_zero_when_it_applied_everything(
    fresh: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    add_clients(fresh, 4)
    capsys.readouterr()

    function_module("sync_client").lambda_handler(json.loads((EVENTS / "schedule.json").read_text()), None)

    (document,) = emitted(capsys.readouterr().out)
    assert (document["Function"], document["Inserted"], document["LagSeconds"]) == ("sync_client", 4, 0.0)


def test_an_sqs_batch_writes_its_failed_records(db: Databases, capsys: pytest.CaptureFixture[str]) -> None:
    good = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "r1", "Body": json.dumps({"kind": "nope"})}
    capsys.readouterr()

    answer = function_module("sync_client").lambda_handler(sqs_event([good]), None)

    assert len(answer["batchItemFailures"]) == 1
    (document,) = emitted(capsys.readouterr().out)
    assert (document["Function"], document["FailedRecords"]) == ("sync_client", 1)


def test_a_scheduled_reconcile_that_stops_early_writes_how_long_what_it_left_has_waited(
    fresh: Databases, capsys: pytest.CaptureFixture[str], reconfigure: Callable[..., None]
) -> None:
    add_clients(fresh, 5)
    fresh.b.execute("set session_replication_role = replica")  # versions an hour old: the trigger would stamp now
    fresh.b.execute("update public.profiles set updated_at = now() - interval '1 hour'")
    fresh.b.execute("set session_replication_role = origin")
    reconfigure(SYNC_PAGE_SIZE="2", SYNC_JOB_BUDGET_SECONDS="0.001")  # one page, then the budget is spent
    capsys.readouterr()

    answer = function_module("sync_client").lambda_handler(json.loads((EVENTS / "schedule.json").read_text()), None)

    (document,) = emitted(capsys.readouterr().out)
    assert answer["finished"] is False
    assert 3590 < document["LagSeconds"] < 3700
