"""Transient faults are retried with bounds, then answered 503 with nothing half-written; logs stay clean."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.conftest import Databases
from tests.integration.helpers import function_client
from tests.integration.test_create_session import THERAPIST, book, new_project_b_client
from tests.random_refs import random_email, random_name

pytestmark = pytest.mark.usefixtures("backend")

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
    client_id = new_project_b_client(db)
    before = db.counts()
    reconfigure(PROJECT_A_DB_URL=UNREACHABLE, DB_POOL_TIMEOUT_SECONDS="0.3", RETRY_ATTEMPTS="2")
    response = book(function_client("create_session"), token(THERAPIST), client_id)
    assert response.status_code == 503
    assert response.json["error"]["code"] == "upstream_unavailable"
    assert db.counts() == before


def retries_logged(output: str, project: str) -> int:
    events = [json.loads(line)["event"] for line in output.splitlines() if line.startswith("{")]
    return events.count(f"project_{project}_retry")


@pytest.mark.direct_only("times the waits of the functions' own database pool")
def test_retries_stop_at_the_time_budget_before_the_attempts_run_out(
    reconfigure: Callable[..., None], db: Databases, token: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    reconfigure(
        PROJECT_A_DB_URL=UNREACHABLE,
        DB_POOL_TIMEOUT_SECONDS="0.2",
        RETRY_ATTEMPTS="10",
        RETRY_BUDGET_SECONDS="0.5",
        RETRY_MAX_WAIT_SECONDS="0.05",
    )
    before = db.counts()
    capsys.readouterr()
    started = time.monotonic()

    response = book(function_client("create_session"), token(THERAPIST), uuid.uuid4())

    elapsed = time.monotonic() - started
    assert response.status_code == 503
    # Each attempt waits 0.2 s for a connection: ten would take 2 s; the budget ends them after about 0.5 s.
    assert 1 <= retries_logged(capsys.readouterr().out, "a") <= 4
    assert elapsed < 1.5
    assert db.counts() == before


@pytest.fixture
def slow_sessions_of(db: Databases) -> Callable[[uuid.UUID], None]:
    """A trigger that makes inserting a session of the given client sleep for 5 s (only that client)."""
    db.a.execute(
        "create or replace function public.test_slow_insert() returns trigger language plpgsql as"
        " $$ begin perform pg_sleep(5); return new; end $$"
    )

    def slow(client_id: uuid.UUID) -> None:
        db.a.execute(
            f"create trigger slow_{client_id.hex} before insert on public.sessions for each row"
            f" when (new.client_id = '{client_id}') execute function public.test_slow_insert()"
        )

    return slow


@pytest.mark.direct_only(
    "the functions set statement and lock timeouts on their own connections; PostgREST's come from its roles"
)
@pytest.mark.parametrize("cause", ["statement_timeout", "lock_timeout"])
def test_a_slow_statement_hits_its_timeout_and_answers_503_within_the_budget(
    reconfigure: Callable[..., None],
    db: Databases,
    token: Callable[..., str],
    slow_sessions_of: Callable[[uuid.UUID], None],
    cause: str,
) -> None:
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, THERAPIST, random_name())
    reconfigure(
        PROJECT_A_STATEMENT_TIMEOUT_MS="300", DB_LOCK_TIMEOUT_MS="300", RETRY_BUDGET_SECONDS="1", RETRY_ATTEMPTS="3"
    )
    before = db.counts()
    started = time.monotonic()
    if cause == "statement_timeout":
        slow_sessions_of(client_id)
        response = book(function_client("create_session"), token(THERAPIST), client_id)
    else:
        with psycopg.connect(db.a.info.dsn) as holder:  # an archive in progress holds the client's row
            holder.execute("select 1 from public.clients where id = %s for update", (client_id,))
            response = book(function_client("create_session"), token(THERAPIST), client_id)

    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json["error"]["code"] == "upstream_unavailable"
    assert elapsed < 1 + 0.3 + 1  # the budget, then one attempt's timeout, and some slack; never the 5 s sleep
    assert db.counts() == before


@pytest.mark.direct_only("drops the reply to a commit between the functions and Postgres")
def test_a_retry_after_a_lost_commit_reply_makes_no_second_session(
    projects: Any, db: Databases, token: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The booking commits, then its reply is lost (the connection drops): the retry finds the same session."""
    from shared.errors import TransientError
    from shared.retry import retried
    from shared.stores.postgres import PostgresProjectA

    committed = []
    book_for_real = PostgresProjectA.book_session.__wrapped__  # type: ignore[attr-defined]

    def commit_then_lose_the_reply(self: PostgresProjectA, *args: Any, **kwargs: Any) -> Any:
        booking = book_for_real(self, *args, **kwargs)
        if not committed:
            committed.append(booking)
            lost = psycopg.OperationalError("server closed the connection unexpectedly")
            raise TransientError(type(lost).__name__) from lost  # what the store makes of a dropped connection
        return booking

    monkeypatch.setattr(PostgresProjectA, "book_session", retried(commit_then_lose_the_reply))
    client_id = uuid.uuid4()
    db.add_project_a_client(client_id, THERAPIST, random_name())

    response = book(function_client("create_session"), token(THERAPIST), client_id)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert committed[0].outcome == "created"
    assert response.json["session"]["id"] == committed[0].session["id"]
    assert db.count("a", "public.sessions", "client_id = %s", (client_id,)) == 1


def terminate_function_connections(db: Databases, project: str) -> int:
    """Kill the functions' pooled connections server-side, as a failover or pooler restart would."""
    conn = db.a if project == "a" else db.b
    return conn.execute(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = %s",
        (f"client-sync-project_{project}",),
    ).fetchone()[0]


@pytest.mark.direct_only("kills the functions' own database connections")
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
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    records = [line for line in lines if line["event"] != "metrics"]  # the invocation's counts, last (no ids)
    events = [record["event"] for record in records]
    assert events == [
        "client_missing_in_project_a",
        "client_sync_applied",
        "session_created",
    ]
    assert [line["Inserted"] for line in lines if line["event"] == "metrics"] == [1]
    for record in records:
        assert record["client_id"] == str(client_id)
        assert record["therapist_id"] == str(THERAPIST)
    assert email not in output
    assert bearer not in output
    assert bearer.split(".")[2] not in output


@pytest.mark.parametrize("function", ["create_session", "project_b_webhook", "sync_client"])
def test_refused_settings_answer_a_json_500_that_quotes_no_secret(
    function: str, reconfigure: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "webhook-secret-" + uuid.uuid4().hex
    # A worst case over the timeout, on either backend: one statement may take a minute.
    reconfigure(PROJECT_B_WEBHOOK_SECRET=secret, PROJECT_A_STATEMENT_TIMEOUT_MS="60000")
    capsys.readouterr()

    response = function_client(function).post("/", json={})

    assert response.status_code == 500
    assert response.json == {"error": {"code": "internal_error", "message": "Internal error"}}
    output = capsys.readouterr()
    assert secret[-10:] not in output.out + output.err
