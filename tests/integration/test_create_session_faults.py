"""Transient faults are retried with bounds, then answered 503 with nothing half-written; logs stay clean."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session import THERAPIST, book, new_project_b_client
from tests.random_refs import random_email, random_name

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=1"


def test_project_b_unreachable_is_503_with_retry_after_and_writes_nothing(
    reconfigure: Callable[..., None], db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    reconfigure(PROJECT_B_DB_URL=UNREACHABLE, DB_POOL_TIMEOUT_SECONDS="0.3", RETRY_ATTEMPTS="3")
    before = db.counts()

    response = book(function_client("create_session"), token(THERAPIST), client_id)

    assert response.status_code == 503
    assert response.json["error"]["code"] == "upstream_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert db.counts() == before
    assert db.client(client_id) is None


def test_project_a_unreachable_is_503(
    reconfigure: Callable[..., None], db: Databases, token: Callable[..., str]
) -> None:
    reconfigure(PROJECT_A_DB_URL=UNREACHABLE, DB_POOL_TIMEOUT_SECONDS="0.3", RETRY_ATTEMPTS="2")
    response = book(function_client("create_session"), token(THERAPIST), uuid.uuid4())
    assert response.status_code == 503
    assert response.json["error"]["code"] == "upstream_unavailable"


def terminate_function_connections(db: Databases, project: str) -> int:
    """Kill the functions' pooled connections server-side, as a failover or pooler restart would."""
    conn = db.a if project == "a" else db.b
    return conn.execute(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = %s",
        (f"client-sync-project_{project}",),
    ).fetchone()[0]


@pytest.mark.parametrize("project", ["a", "b"])
def test_dropped_connections_are_retried_transparently(
    projects: Any, db: Databases, token: Callable[..., str], project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client = function_client("create_session")
    warm_up = new_project_b_client(db)
    assert book(client, token(THERAPIST), warm_up).status_code == 201
    assert terminate_function_connections(db, project) >= 1
    client_id = new_project_b_client(db)

    response = book(client, token(THERAPIST), client_id)

    assert response.status_code == 201, response.json
    assert response.json["client_synced"] is True
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1
    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert f"project_{project}_retry" in events


def test_logs_are_json_lines_with_ids_and_no_email_or_token(
    projects: Any, db: Databases, token: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    email = random_email("private")
    client_id = uuid.uuid4()
    db.add_project_b_client(client_id, random_name(), email, age=40)
    bearer = token(THERAPIST)
    capsys.readouterr()

    assert book(function_client("create_session"), bearer, client_id).status_code == 201

    output = capsys.readouterr().out
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    events = [record["event"] for record in records]
    assert events == [
        "client_missing_in_project_a",
        "syncing_client_from_project_b",
        "client_synced",
        "session_created",
    ]
    for record in records:
        assert record["client_id"] == str(client_id)
        assert record["therapist_id"] == str(THERAPIST)
    assert email not in output
    assert bearer not in output
    assert bearer.split(".")[2] not in output
