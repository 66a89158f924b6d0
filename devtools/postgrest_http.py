"""HTTP/1.1 framing for devtools.postgrest (RFC 9112): the request line, header fields and a Content-Length body
of each request on a persistent connection, and each answer as one write. What it does not read (a chunked body)
it refuses, as it does a malformed or oversized request; the connection then closes. devtools.auth_admin uses it
too."""

from __future__ import annotations

import io
import re
import socket
import socketserver
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import urlsplit

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_LINE_BYTES = 8192  # a request line or a header line (http.server allows 65536, Warp less)
MAX_HEADERS = 100
_FRAMING = ("content-length", "transfer-encoding")
_LENGTH = re.compile(r"[0-9]{1,19}")  # ASCII digits only (str.isdigit takes "²"), and no int() of 5,000 digits


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    keep_alive: bool
    query: str = ""  # the target's query string, undecoded


class Closed(Exception):
    """The caller closed in the middle of a request: nothing is answered, the connection ends."""


class Refused(Exception):
    """A request refused before it is served; the connection then closes (what is left of it is not read)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def read_request(rfile: io.BufferedIOBase) -> Request | None:
    """The request line and headers of the next request (RFC 9112 section 2-5), None when the caller closed."""
    line = rfile.readline(MAX_LINE_BYTES + 1)
    while line in (b"\r\n", b"\n"):  # RFC 9112 section 2.2: empty lines before a request line are ignored
        line = rfile.readline(MAX_LINE_BYTES + 1)
    if not line:
        return None
    if len(line) > MAX_LINE_BYTES:
        raise Refused(414, "URI Too Long")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1") or not all(parts):
        raise Refused(400, "Bad Request")
    method, target, version = parts
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_LINE_BYTES + 1)
        if not line:
            raise Closed  # the caller closed in the middle of the headers
        if line in (b"\r\n", b"\n"):
            break
        if len(line) > MAX_LINE_BYTES:
            raise Refused(431, "Request Header Fields Too Large")
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not name or name != name.strip():
            raise Refused(400, "Bad Request")  # also obsolete line folding (RFC 9112 section 5.2)
        name, value = name.lower(), value.strip()
        if name in _FRAMING and headers.get(name, value) != value:
            raise Refused(400, "Bad Request")  # two framings of one body (RFC 9112 section 6.3): refused
        headers[name] = value  # another repeated name keeps its last value
    else:
        raise Refused(431, "Request Header Fields Too Large")
    tokens = {token.strip() for token in headers.get("connection", "").lower().split(",")}
    keep_alive = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
    split = urlsplit(target)
    return Request(method, split.path, headers, keep_alive, split.query)


def read_body(rfile: io.BufferedIOBase, connection: socket.socket, request: Request) -> bytes:
    """The request's body (Content-Length framed), or Refused."""
    if "transfer-encoding" in request.headers:
        raise Refused(411, "Length Required")  # postgrest-py and httpx send a Content-Length
    length_header = request.headers.get("content-length", "0")
    if not _LENGTH.fullmatch(length_header):
        raise Refused(400, "Bad Request")
    length = int(length_header)
    if length > MAX_BODY_BYTES:
        raise Refused(413, "Request Entity Too Large")
    if request.headers.get("expect", "").lower() == "100-continue":
        connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl asks before a large body
    body = rfile.read(length) if length else b""
    if len(body) != length:
        raise Closed  # the caller closed before the whole body came
    return body


def response(
    status: int,
    body: str | None,
    headers: dict[str, str],
    *,
    close: bool,
    head: bool,
    server: str = "postgrest-standin",
) -> bytes:
    """The whole answer, to go out in one write (with TCP_NODELAY, as Warp sets it, no piece waits for an ACK)."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Date: {formatdate(usegmt=True)}"]
    lines += [f"Server: {server}", *(f"{key}: {value}" for key, value in headers.items())]
    if close:
        lines.append("Connection: close")
    data = b""
    if status != 204:
        data = (body or "").encode()
        lines += ["Content-Type: application/json; charset=utf-8", f"Content-Length: {len(data)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else data)


class Server(socketserver.ThreadingTCPServer):
    """The stand-ins' server: a thread per connection, daemon threads, and a backlog of 128 (socketserver listens
    with 5: a burst of new connections beyond it was reset)."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128
