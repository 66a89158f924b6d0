"""Over real HTTP: a body is read to one byte over its limit and no further, whether or not it declares a
length, and a NUL character anywhere in a body is a 400. Nothing is written either way."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from tests.conftest import WEBHOOK_SECRET, Databases
from tests.integration.helpers import function_client, serve_function
from tests.integration.test_create_session import STARTS_AT, THERAPIST, new_project_b_client
from tests.integration.test_project_b_webhook import deliver, payload

# Long enough for an answer, short enough that a server waiting for the rest of the body fails the test.
ANSWER_TIMEOUT_SECONDS = 10
WEBHOOK_LIMIT = 1024


@pytest.fixture
def create_session_url(projects: Any) -> Iterator[str]:
    with serve_function("create_session") as url:
        yield url


@pytest.fixture
def small_webhook_url(reconfigure: Callable[..., None]) -> Iterator[str]:
    reconfigure(WEBHOOK_MAX_BODY_BYTES=str(WEBHOOK_LIMIT))
    with serve_function("project_b_webhook") as url:
        yield url


def post_unfinished(url: str, headers: dict[str, str], body: bytes, *, chunk_size: int | None) -> tuple[int, Any]:
    """POST `body` over a raw socket and never finish the request: chunked (`chunk_size`) without the
    last, empty chunk, or else with a Content-Length one byte longer than `body`. The answer must come
    anyway, within ANSWER_TIMEOUT_SECONDS."""
    address = urlsplit(url)
    lines = [f"POST {address.path or '/'} HTTP/1.1", f"Host: {address.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if chunk_size is None:
        lines.append(f"Content-Length: {len(body) + 1}")
        framed = body
    else:
        lines.append("Transfer-Encoding: chunked")
        pieces = [body[start : start + chunk_size] for start in range(0, len(body), chunk_size)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)  # and no b"0\r\n\r\n"
    with socket.create_connection((address.hostname, address.port), timeout=ANSWER_TIMEOUT_SECONDS) as sock:
        # The server may answer and close before it has taken all of it: its answer is still to be read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + framed)
        answer = http.client.HTTPResponse(sock)
        try:
            answer.begin()
        except TimeoutError:
            pytest.fail(f"no answer in {ANSWER_TIMEOUT_SECONDS} s: the server waits for the rest of the body")
        return answer.status, json.loads(answer.read())


def booking_body(client_id: uuid.UUID, size: int) -> bytes:
    """A booking of a real client, its notes padding it to `size` bytes (and left open: never valid JSON)."""
    start = json.dumps({"client_id": str(client_id), "starts_at": STARTS_AT, "notes": ""})[:-2].encode()
    return start + b"x" * (size - len(start))


def webhook_body(client_id: uuid.UUID, size: int) -> bytes:
    start = json.dumps(payload("INSERT", client_id, name=""))[:-3].encode()
    return start + b"x" * (size - len(start))


def assert_payload_too_large(status: int, answer: Any) -> None:
    assert status == 413, answer
    assert answer["error"]["code"] == "payload_too_large"
    assert answer["error"]["message"]


@pytest.mark.parametrize("chunk_size", [8 * 1024, 1000])
def test_create_session_answers_413_to_a_chunked_body_over_64_kib_without_reading_the_rest(
    create_session_url: str, db: Databases, token: Callable[..., str], chunk_size: int
) -> None:
    client_id = new_project_b_client(db)
    before = db.counts()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token(THERAPIST)}"}

    status, answer = post_unfinished(
        create_session_url, headers, booking_body(client_id, 80 * 1024), chunk_size=chunk_size
    )

    assert_payload_too_large(status, answer)
    assert db.counts() == before


def test_create_session_answers_413_to_a_declared_length_over_64_kib_without_reading_the_body(
    create_session_url: str, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    before = db.counts()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token(THERAPIST)}"}

    status, answer = post_unfinished(create_session_url, headers, booking_body(client_id, 70 * 1024), chunk_size=None)

    assert_payload_too_large(status, answer)
    assert db.counts() == before


def test_create_session_reads_a_chunked_body_of_exactly_64_kib(
    create_session_url: str, db: Databases, token: Callable[..., str]
) -> None:
    client_id = new_project_b_client(db)
    body = json.dumps({"client_id": str(client_id), "starts_at": STARTS_AT, "notes": "x" * 10_000}).encode()
    body += b" " * (64 * 1024 - len(body))  # JSON allows trailing whitespace
    address = urlsplit(create_session_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=ANSWER_TIMEOUT_SECONDS)
    pieces = [body[start : start + 4096] for start in range(0, len(body), 4096)]
    connection.request(
        "POST",
        "/",
        body=iter(pieces),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token(THERAPIST)}"},
        encode_chunked=True,
    )
    answer = connection.getresponse()
    assert answer.status == 201, answer.read()
    assert json.loads(answer.read())["session"]["notes"] == "x" * 10_000
    connection.close()


@pytest.mark.parametrize(
    ("chunk_size", "body_size"),
    [(512, 4 * WEBHOOK_LIMIT), (100, 4 * WEBHOOK_LIMIT), (None, 2 * WEBHOOK_LIMIT)],
    ids=["chunked-512", "chunked-100", "declared-length"],
)
def test_webhook_answers_413_to_a_body_over_its_limit_without_reading_the_rest(
    small_webhook_url: str, db: Databases, chunk_size: int | None, body_size: int
) -> None:
    client_id = new_project_b_client(db)
    before = db.counts()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {WEBHOOK_SECRET}"}

    status, answer = post_unfinished(
        small_webhook_url, headers, webhook_body(client_id, body_size), chunk_size=chunk_size
    )

    assert_payload_too_large(status, answer)
    assert db.counts() == before


def padded_webhook_event(client_id: uuid.UUID, size: int) -> bytes:
    """A complete, valid INSERT event of `client_id`, `size` bytes long (the record's name is only a hint)."""
    empty = json.dumps(payload("INSERT", client_id, name=""))
    return json.dumps(payload("INSERT", client_id, name="x" * (size - len(empty)))).encode()


def test_webhook_body_over_its_limit_is_413_and_writes_nothing(reconfigure: Callable[..., None], db: Databases) -> None:
    client_id = new_project_b_client(db)
    body = padded_webhook_event(client_id, WEBHOOK_LIMIT + 1)
    assert len(body) == WEBHOOK_LIMIT + 1
    before = db.counts()

    reconfigure(WEBHOOK_MAX_BODY_BYTES=str(WEBHOOK_LIMIT))
    response = deliver(function_client("project_b_webhook"), body)

    assert response.status_code == 413, response.json
    assert response.json["error"]["code"] == "payload_too_large"
    assert db.counts() == before

    # The same event one byte shorter, or under the default limit, is applied.
    reconfigure(WEBHOOK_MAX_BODY_BYTES=str(WEBHOOK_LIMIT + 1))
    assert deliver(function_client("project_b_webhook"), body).status_code == 200
    assert db.client(client_id) is not None


@pytest.fixture
def webhook(projects: Any) -> FlaskClient:
    return function_client("project_b_webhook")


@pytest.mark.parametrize(
    "name",
    [b'"Jane\\u0000Doe"', b'"Jane\\\\\\u0000Doe"', b'"Jane\x00Doe"'],
    ids=["escape", "escape after an escaped backslash", "raw byte"],
)
def test_webhook_payload_with_a_nul_is_400_and_writes_nothing(webhook: FlaskClient, db: Databases, name: bytes) -> None:
    client_id = new_project_b_client(db)
    body = json.dumps(payload("INSERT", client_id, name="NAME")).encode().replace(b'"NAME"', name)
    before = db.counts()

    response = deliver(webhook, body)

    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_request"
    assert "NUL" in response.json["error"]["message"]
    assert db.counts() == before
    assert db.client(client_id) is None


def test_webhook_payload_with_an_escaped_backslash_before_u0000_is_applied(webhook: FlaskClient, db: Databases) -> None:
    client_id = new_project_b_client(db)
    body = json.dumps(payload("INSERT", client_id, name="Jane\\u0000Doe")).encode()
    assert b"\\\\u0000" in body

    assert deliver(webhook, body).status_code == 200


def test_a_malformed_chunk_is_a_400_and_writes_nothing(small_webhook_url: str, db: Databases) -> None:
    address = urlsplit(small_webhook_url)
    before = db.counts()
    request = (
        f"POST {address.path or '/'} HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {WEBHOOK_SECRET}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=ANSWER_TIMEOUT_SECONDS) as sock:
        sock.sendall(request.encode())
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        status, body = answer.status, json.loads(answer.read())

    assert (status, body["error"]["code"]) == (400, "invalid_request")
    assert db.counts() == before
