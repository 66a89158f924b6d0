"""HTTP adapters, error mapping, retry classification and log filtering, without a database."""

from __future__ import annotations

import json

import psycopg
import pytest

from shared.config import Settings
from shared.errors import ConcurrentSyncRace, EmailConflict, TransientError, UpstreamUnavailable
from shared.http import HttpResponse, answer, error_response, from_lambda, to_lambda
from shared.logs import log_event
from shared.retry import call_with_retries
from shared.stores import pools

FAST = Settings(retry_attempts=3, retry_max_wait_seconds=0)


def test_from_lambda_reads_method_headers_and_base64_body() -> None:
    event = {
        "requestContext": {"http": {"method": "post"}},
        "headers": {"Content-Type": "application/json"},
        "body": "eyJhIjogMX0=",
        "isBase64Encoded": True,
    }
    request = from_lambda(event)
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.body == b'{"a": 1}'


def test_unexpected_errors_are_a_json_500_without_details(capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> HttpResponse:
        raise RuntimeError("secret detail jane@example.com")

    response = to_lambda(answer("create_session", broken))
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"error": {"code": "internal_error", "message": "Internal error"}}
    assert "jane@example.com" not in capsys.readouterr().out


def test_upstream_unavailable_carries_retry_after() -> None:
    response = error_response(UpstreamUnavailable("down"), 7)
    assert response.status == 503
    assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (psycopg.OperationalError("connection lost"), True),
        (psycopg.errors.SerializationFailure(), True),
        (psycopg.errors.DeadlockDetected(), True),
        (psycopg.errors.QueryCanceled(), True),
        (psycopg.errors.LockNotAvailable(), True),
        (psycopg.errors.UniqueViolation(), False),
        (psycopg.errors.InvalidAuthorizationSpecification(), False),
        (ValueError(), False),
    ],
)
def test_the_postgres_backend_tells_what_may_pass(exc: BaseException, transient: bool) -> None:
    assert pools.is_transient(exc) is transient


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (TransientError("x"), True),
        (ConcurrentSyncRace("x"), True),
        (EmailConflict("taken"), False),
        (ValueError(), False),
    ],
)
def test_retries_take_the_domains_transient_errors_only(exc: BaseException, transient: bool) -> None:
    calls: list[int] = []

    def fails_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise exc
        return "ok"

    if transient:
        assert call_with_retries(FAST, "project_a", fails_once) == "ok"
    else:
        with pytest.raises(type(exc)):
            call_with_retries(FAST, "project_a", fails_once)
    assert len(calls) == (2 if transient else 1)


def test_the_retry_module_knows_no_driver() -> None:
    import ast
    import inspect

    from shared import retry

    tree = ast.parse(inspect.getsource(retry))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in ("psycopg", "psycopg_pool", "supabase", "httpx")}


def test_retries_are_bounded_then_upstream_unavailable() -> None:
    calls = []

    def always_fails() -> None:
        calls.append(1)
        raise TransientError("SerializationFailure")

    with pytest.raises(UpstreamUnavailable):
        call_with_retries(FAST, "project_a", always_fails)
    assert len(calls) == 3


def test_a_transient_fault_then_success_returns_the_result() -> None:
    outcomes = iter([TransientError("DeadlockDetected"), "ok"])

    def flaky() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert call_with_retries(FAST, "project_a", flaky) == "ok"


def test_non_transient_errors_are_not_retried() -> None:
    calls = []

    def conflict() -> None:
        calls.append(1)
        raise EmailConflict("taken")

    with pytest.raises(EmailConflict):
        call_with_retries(FAST, "project_a", conflict)
    assert len(calls) == 1


def test_log_lines_keep_only_allowed_fields(capsys: pytest.CaptureFixture[str]) -> None:
    log_event("client_synced", client_id="c1", email="jane@example.com", token="eyJ.secret", therapist_id="t1")
    record = json.loads(capsys.readouterr().out)
    assert record == {"level": "info", "event": "client_synced", "client_id": "c1", "therapist_id": "t1"}
