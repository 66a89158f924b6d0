"""The client backend's requests, exactly (method, path, apikey, Authorization, body), over httpx's MockTransport:
what goes with the therapist's token and what with the service-role key, that a token travels only with its own
request under concurrent threads, that nothing but tenacity retries, and how PostgREST's errors map."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.errors import ConcurrentSyncRace, TransientError, Unauthorized, UpstreamUnavailable
from shared.models import SourceClient
from shared.ports import BookingRequest
from shared.stores import rpc_http
from shared.stores.rpc import RpcProjectA, RpcProjectB

URL_A, URL_B = "http://127.0.0.1:54321", "http://127.0.0.1:54322"
KEY_A, KEY_B = "service-key-a", "service-key-b"
CLAIMS = {"sub": "11111111-1111-4111-8111-111111111111", "role": "authenticated"}
SESSION = {"id": str(uuid.uuid4()), "status": "scheduled"}

Handler = Callable[[str, dict[str, Any]], tuple[int, Any]]
TIMEOUT = httpx.Timeout(1.0).as_dict()


class Recorder:
    """Answers each rpc with `handler(function, body)` and records every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
        function = request.url.path.rsplit("/", 1)[-1]
        status, body = self.handler(function, json.loads(request.content or b"{}"))
        return httpx.Response(status, json=body)

    def seen(self) -> list[tuple[str, str, str | None, str | None, Any]]:
        return [
            (r.method, r.url.path, r.headers.get("apikey"), r.headers.get("authorization"), json.loads(r.content))
            for r in self.requests
        ]


class _Server:
    """A local TCP server whose connections each get `reply(conn)` (tests of the real transport)."""

    def __init__(self, reply: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.reply = reply
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.reply, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise StopIteration  # the caller closed
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += conn.recv(65536)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        project_a_url=URL_A,
        project_a_service_role_key=KEY_A,
        project_b_url=URL_B,
        project_b_service_role_key=KEY_B,
        retry_attempts=3,
        retry_max_wait_seconds=0,
    )


@pytest.fixture
def serve(settings: Settings) -> Iterator[Callable[[Handler], Recorder]]:
    def install(handler: Handler) -> Recorder:
        recorder = Recorder(handler)
        for project, url in (("project_a", URL_A), ("project_b", URL_B)):
            rpc_http._endpoints[(project, url)] = rpc_http.Endpoint(httpx.MockTransport(recorder), TIMEOUT)
        return recorder

    yield install
    rpc_http.close_http_clients()


def booking(token: str | None = None, client_id: uuid.UUID | None = None) -> BookingRequest:
    return BookingRequest(
        claims=CLAIMS,
        client_id=client_id or uuid.uuid4(),
        starts_at=datetime(2027, 1, 4, 9, tzinfo=UTC),
        duration_minutes=50,
        notes=None,
        idempotency_key="key-1",
        access_token=token or "therapist-token",
    )


def create_session_body(request: BookingRequest) -> dict[str, Any]:
    return {
        "p_client_id": str(request.client_id),
        "p_starts_at": "2027-01-04T09:00:00+00:00",
        "p_duration_minutes": 50,
        "p_notes": None,
        "p_idempotency_key": "key-1",
    }


def test_a_synced_clients_booking_is_one_request_with_the_therapists_token(
    settings: Settings, serve: Callable[[Handler], Recorder]
) -> None:
    recorder = serve(lambda function, body: (200, {"outcome": "created", "session": SESSION}))
    request = booking()

    answer = RpcProjectA(settings).book_session(request)

    assert (answer.outcome, answer.session, answer.copy) == ("created", SESSION, None)
    assert recorder.seen() == [
        ("POST", "/rest/v1/rpc/create_session", KEY_A, "Bearer therapist-token", create_session_body(request))
    ]
    sent = recorder.requests[0].headers
    assert (sent["content-type"], sent["content-profile"], sent["accept-profile"]) == (
        "application/json",
        "public",
        "public",
    )


def test_a_first_sync_copies_with_the_service_key_and_books_with_the_token(
    settings: Settings, serve: Callable[[Handler], Recorder]
) -> None:
    request = booking()
    copy = SourceClient(id=request.client_id, profile={"name": "Ada"}, updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    written = {"client_id": str(request.client_id), "outcome": "inserted", "notices": []}
    answers = {
        "copy_client_as": {"client": written, "copy_refused": False},
        "create_session": {"outcome": "created", "session": SESSION},
    }
    recorder = serve(lambda function, body: (200, answers[function]))

    answer = RpcProjectA(settings).book_session(request, copy)

    assert (answer.outcome, answer.copy and answer.copy.outcome) == ("created", "inserted")
    copied = {"p_claims": CLAIMS, "p_client_id": str(request.client_id), "p_client": copy.model_dump(mode="json")}
    assert recorder.seen() == [
        ("POST", "/rest/v1/rpc/copy_client_as", KEY_A, f"Bearer {KEY_A}", copied),
        ("POST", "/rest/v1/rpc/create_session", KEY_A, "Bearer therapist-token", create_session_body(request)),
    ]


def test_a_not_found_asks_with_the_service_key_whether_the_id_is_held_elsewhere(
    settings: Settings, serve: Callable[[Handler], Recorder]
) -> None:
    answers = {"create_session": {"outcome": "not_found"}, "copy_client_as": {"held_elsewhere": True}}
    recorder = serve(lambda function, body: (200, answers[function]))
    request = booking()

    answer = RpcProjectA(settings).book_session(request)

    assert (answer.outcome, answer.held_elsewhere) == ("not_found", True)
    assert recorder.seen()[1] == (
        "POST",
        "/rest/v1/rpc/copy_client_as",
        KEY_A,
        f"Bearer {KEY_A}",
        {"p_claims": CLAIMS, "p_client_id": str(request.client_id)},
    )


def test_project_b_is_read_with_its_own_key(settings: Settings, serve: Callable[[Handler], Recorder]) -> None:
    client_id = uuid.uuid4()
    row = {
        "id": str(client_id),
        "profile": None,
        "updated_at": None,
        "deleted_at": "2026-12-01T10:00:00+00:00",
        "read_at": "2026-12-03T10:00:00.123456+00:00",
        "version_clamped": False,
    }
    recorder = serve(lambda function, body: (200, [row]))

    (state,) = RpcProjectB(settings).read_clients([client_id])

    assert state.absence is not None and state.absence.deleted_at == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert recorder.seen() == [
        ("POST", "/rest/v1/rpc/client_states", KEY_B, f"Bearer {KEY_B}", {"p_ids": [str(client_id)]})
    ]


def test_concurrent_bookings_each_go_out_with_their_own_token(
    settings: Settings, serve: Callable[[Handler], Recorder]
) -> None:
    threads_at_once = 8
    barrier = threading.Barrier(threads_at_once)

    def handler(function: str, body: dict[str, Any]) -> tuple[int, Any]:
        barrier.wait(timeout=5)  # every request is in flight at once before any is answered
        return 200, {"outcome": "created", "session": SESSION}

    recorder = serve(handler)
    project_a = RpcProjectA(settings)
    requests = [booking(token=f"token-{n}", client_id=uuid.UUID(int=n + 1)) for n in range(threads_at_once)]
    threads = [threading.Thread(target=project_a.book_session, args=(request,)) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    sent = {json.loads(r.content)["p_client_id"]: r.headers["authorization"] for r in recorder.requests}
    assert sent == {str(uuid.UUID(int=n + 1)): f"Bearer token-{n}" for n in range(threads_at_once)}


def test_the_librarys_retries_are_off_tenacitys_are_the_only_ones(
    settings: Settings, serve: Callable[[Handler], Recorder]
) -> None:
    recorder = serve(lambda function, body: (503, {"code": "PGRST001", "message": "no connection"}))

    with pytest.raises(UpstreamUnavailable):
        RpcProjectB(settings).read_clients([uuid.uuid4()])

    assert len(recorder.requests) == settings.retry_attempts


def test_a_connection_dropped_before_any_answer_is_transient_and_retried_by_tenacity(settings: Settings) -> None:
    """Over the real transport, a PostgREST that closes each connection at once: each of tenacity's attempts makes
    one request, and the call ends as UpstreamUnavailable."""
    accepted: list[int] = []

    def drop(conn: socket.socket) -> None:
        accepted.append(1)
        conn.close()

    server = _Server(drop)
    try:
        with pytest.raises(UpstreamUnavailable):
            RpcProjectB(settings.model_copy(update={"project_b_url": server.url})).read_clients([uuid.uuid4()])
    finally:
        server.close()
        rpc_http.close_http_clients()

    assert len(accepted) == settings.retry_attempts


def test_the_transport_is_built_without_retries_of_its_own(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx's transport retries a failed connect `retries` times; the endpoint's is built with none, so that it
    cannot multiply tenacity's attempts."""
    built: list[int] = []

    class Recording(httpx.HTTPTransport):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(kwargs["retries"])

    monkeypatch.setattr(rpc_http.httpx, "HTTPTransport", Recording)
    try:
        rpc_http.http_endpoint("project_a", URL_A, settings)
        rpc_http.http_endpoint("project_b", URL_B, settings)
        rpc_http.http_endpoint("project_a", URL_A, settings)
    finally:
        rpc_http.close_http_clients()

    assert built == [0, 0]


def test_no_state_of_one_call_goes_with_the_next() -> None:
    """A cookie set by a gateway in front of PostgREST is not kept (an httpx.Client's cookie jar would send it with
    every later request, whoever's), and each request carries only its own headers."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[], headers={"Set-Cookie": "lb=therapist-1; Path=/"})

    endpoint = rpc_http.Endpoint(httpx.MockTransport(answer), TIMEOUT)
    rpc_http.call_rpc(endpoint, URL_A, "f", {}, key=KEY_A, token="token-1")
    rpc_http.call_rpc(endpoint, URL_A, "f", {}, key=KEY_A, token="token-2")

    assert [r.headers.get("cookie") for r in seen] == [None, None]
    assert [r.headers["authorization"] for r in seen] == ["Bearer token-1", "Bearer token-2"]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (503, {"code": "PGRST001", "message": "Database client error"}, TransientError),
        (500, {"code": "40001", "message": "could not serialize access"}, TransientError),
        (500, {"code": "57014", "message": "canceling statement due to statement timeout"}, TransientError),
        (503, {"code": "08006", "message": "connection failure"}, TransientError),
        (502, "<html>Bad Gateway</html>", TransientError),
        (503, {"message": "name resolution failed"}, TransientError),
        (500, {"code": "P0004", "message": "assertion failed"}, None),
        (500, {"code": "40P01", "message": "deadlock detected"}, TransientError),
        (
            409,
            {
                "code": "23505",
                "message": 'duplicate key value violates unique constraint "clients_synced_email_unique"',
            },
            ConcurrentSyncRace,
        ),
        (409, {"code": "23505", "message": 'duplicate key value violates unique constraint "sessions_pkey"'}, None),
        (404, {"code": "PGRST202", "message": "Could not find the function"}, None),
        (401, {"code": "PGRST301", "message": "JWSError"}, None),
    ],
)
def test_postgrests_errors_map_to_the_domains(status: int, body: Any, error: type[Exception] | None) -> None:
    """With the service-role key as bearer (a refused key is a fault of the deployment, not the caller's)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    endpoint = rpc_http.Endpoint(httpx.MockTransport(answer), TIMEOUT)
    with pytest.raises(Exception) as raised:
        rpc_http.call_rpc(endpoint, URL_A, "f", {}, key=KEY_A, token=KEY_A)
    if error is None:
        assert type(raised.value) is rpc_http.RpcError
    else:
        assert type(raised.value) is error


def test_a_dropped_connection_or_a_timeout_is_transient() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    endpoint = rpc_http.Endpoint(httpx.MockTransport(drop), TIMEOUT)
    with pytest.raises(TransientError):
        rpc_http.call_rpc(endpoint, URL_A, "f", {}, key=KEY_A, token=KEY_A)


def test_a_therapists_token_refused_by_postgrest_is_401(
    settings: Settings, serve: Callable[[Handler], Recorder]
) -> None:
    serve(lambda function, body: (401, {"code": "PGRST303", "message": "JWT expired"}))

    with pytest.raises(Unauthorized):
        RpcProjectA(settings).book_session(booking())


def test_a_call_gives_up_after_its_read_timeout(settings: Settings) -> None:
    """The endpoint's timeouts go with each request: a PostgREST that never answers is a TransientError once the
    read timeout (the statement timeout plus the margin) has passed, not a wait without end."""

    def never_answer(conn: socket.socket) -> None:
        _read_request(conn)
        time.sleep(3)  # then gone: without the timeout, the call would end here, not with a ReadTimeout
        conn.close()

    server = _Server(never_answer)
    quick = settings.model_copy(update={"project_a_statement_timeout_ms": 200, "http_read_margin_seconds": 0.1})
    endpoint = rpc_http.http_endpoint("project_a", server.url, quick)
    try:
        assert endpoint.timeout["read"] == pytest.approx(0.3)
        started = time.monotonic()
        with pytest.raises(TransientError, match="ReadTimeout"):
            rpc_http.call_rpc(endpoint, server.url, "f", {}, key=KEY_A, token=KEY_A)
        assert time.monotonic() - started < 2
    finally:
        server.close()
        rpc_http.close_http_clients()


@pytest.mark.parametrize(
    ("headers", "body"), [({}, b"<html>not json</html>"), ({"Content-Encoding": "gzip"}, b"not gzip at all")]
)
def test_a_2xx_that_is_not_postgrests_json_is_a_fault_of_the_deployment(headers: dict[str, str], body: bytes) -> None:
    endpoint = rpc_http.Endpoint(
        httpx.MockTransport(lambda request: httpx.Response(200, headers=headers, content=body)), TIMEOUT
    )
    with pytest.raises(rpc_http.RpcError):
        rpc_http.call_rpc(endpoint, URL_A, "f", {}, key=KEY_A, token=KEY_A)
