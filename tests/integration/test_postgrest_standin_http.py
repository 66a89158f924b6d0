"""devtools.postgrest's HTTP/1.1 framing (RFC 9112), on raw sockets: keep-alive and pipelined requests, the
connection's close, malformed or oversized requests refused with a 4xx and a close, `Expect: 100-continue`, HEAD."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import BinaryIO

import pytest

from devtools.localdb import LocalProjects, authenticator_url
from devtools.postgrest import PostgrestStandIn, serving
from devtools.postgrest_http import MAX_HEADERS, MAX_LINE_BYTES
from devtools.tokens import sign_service_role_token
from tests.conftest import JWT_SECRET

SERVICE_KEY = sign_service_role_token(JWT_SECRET)


@pytest.fixture(scope="module")
def standin(projects: LocalProjects) -> Iterator[PostgrestStandIn]:
    with serving(authenticator_url(projects.server_url, projects.project_a_url), JWT_SECRET) as server:
        yield server


@pytest.fixture
def conn(standin: PostgrestStandIn) -> Iterator[socket.socket]:
    host, port = standin.server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=10) as sock:
        yield sock


def request(
    body: bytes = b"{}", *, method: str = "POST", version: str = "HTTP/1.1", extra: str = "", length: bool = True
) -> bytes:
    head = f"{method} /rest/v1/rpc/sync_conflicts {version}\r\nHost: x\r\napikey: {SERVICE_KEY}\r\n"
    head += "Content-Type: application/json\r\n" + (f"Content-Length: {len(body)}\r\n" if length else "") + extra
    return (head + "\r\n").encode() + body


def read_answer(sock: socket.socket, *, head: bool = False) -> tuple[int, dict[str, str], bytes]:
    """The next answer on `sock`: status, headers (names lower-cased) and body (framed by Content-Length). One
    reader per socket, so that bytes it buffered of a next answer are not lost."""
    reader = _readers.setdefault(sock.fileno(), sock.makefile("rb"))
    status = int(reader.readline().split()[1])
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    body = b"" if head else reader.read(int(headers.get("content-length", "0")))
    return status, headers, body


_readers: dict[int, BinaryIO] = {}


@pytest.fixture(autouse=True)
def _forget_readers() -> Iterator[None]:
    yield
    _readers.clear()


def closed(sock: socket.socket) -> bool:
    reader = _readers.get(sock.fileno())
    return (reader.read(1) if reader else sock.recv(1)) == b""


def test_requests_on_one_connection_are_answered_in_turn_even_pipelined(conn: socket.socket) -> None:
    conn.sendall(request())
    first = read_answer(conn)
    conn.sendall(request() + b"\r\n" + request())  # two in one write, an empty line between (RFC 9112 2.2)
    second, third = read_answer(conn), read_answer(conn)

    assert [answer[0] for answer in (first, second, third)] == [200, 200, 200]
    assert "connection" not in first[1]
    assert first[2].startswith(b"[")


def test_connection_close_and_http_1_0_close_after_the_answer(standin: PostgrestStandIn) -> None:
    host, port = standin.server.server_address[:2]
    for wanted in (request(extra="Connection: close\r\n"), request(version="HTTP/1.0")):
        with socket.create_connection((str(host), int(port)), timeout=10) as sock:
            sock.sendall(wanted)
            status, headers, _ = read_answer(sock)
            assert (status, headers["connection"]) == (200, "close")
            assert closed(sock)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"POST /rest/v1/rpc/sync_conflicts\r\n\r\n", 400),  # no version
        (b"POST /rest/v1/rpc/sync_conflicts HTTP/2.0\r\n\r\n", 400),
        (b"POST /rest/v1/rpc/x HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"POST /rest/v1/rpc/x HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        (b"POST /rest/v1/rpc/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST /rest/v1/rpc/x HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", 400),  # "2" to str.isdigit
        (b"POST /rest/v1/rpc/x HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 400),
        (b"POST /rest/v1/rpc/x HTTP/1.1\r\nContent-Length: 40\r\nContent-Length: 2\r\n\r\n{}", 400),
        (b"POST\xa0/rest/v1/rpc/x HTTP/1.1\r\n\r\n", 400),
        (b"POST /" + b"a" * MAX_LINE_BYTES + b" HTTP/1.1\r\n\r\n", 414),
        (b"POST /rest/v1/rpc/x HTTP/1.1\r\nX-Long: " + b"a" * MAX_LINE_BYTES + b"\r\n\r\n", 431),
        (b"POST /rest/v1/rpc/x HTTP/1.1\r\n" + b"X-Many: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n", 431),
    ],
)
def test_a_malformed_or_oversized_request_is_refused_and_the_connection_closed(
    conn: socket.socket, raw: bytes, status: int
) -> None:
    conn.sendall(raw)
    answered, headers, _ = read_answer(conn)

    assert (answered, headers["connection"]) == (status, "close")
    assert closed(conn)


def test_expect_100_continue_is_answered_before_the_body_is_sent(conn: socket.socket) -> None:
    head, _, body = request(extra="Expect: 100-continue\r\n").partition(b"\r\n\r\n")
    conn.sendall(head + b"\r\n\r\n")
    interim = conn.recv(len(b"HTTP/1.1 100 Continue\r\n\r\n"))
    conn.sendall(body)

    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert read_answer(conn)[0] == 200


def test_head_is_answered_without_a_body_and_the_connection_serves_on(conn: socket.socket) -> None:
    conn.sendall(request(b"", method="HEAD"))
    status, headers, _ = read_answer(conn, head=True)
    conn.sendall(request())

    assert (status, int(headers["content-length"]) > 0) == (405, True)
    assert read_answer(conn)[0] == 200  # no body of the HEAD answer was taken for this one's


@pytest.mark.parametrize(
    "cut", [b"\r\nHost: x\r\n", b"\r\nContent-Length: 10\r\n\r\n{}"], ids=["in the headers", "in the body"]
)
def test_a_request_cut_off_is_not_served(conn: socket.socket, cut: bytes) -> None:
    conn.sendall(f"POST /rest/v1/rpc/sync_conflicts HTTP/1.1\r\napikey: {SERVICE_KEY}".encode() + cut)
    conn.shutdown(socket.SHUT_WR)

    assert conn.recv(1024) == b""  # closed without an answer: nothing was run
