"""Request bodies: read at most one byte over the limit, and NUL characters refused. No server, no database."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from shared.errors import InvalidRequest
from shared.http import HttpRequest, contains_nul, from_flask, parse_body, read_at_most


class EndlessStream(io.RawIOBase):
    """A body that never ends, like a chunked one without its last chunk; counts what is read of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), 1000)  # short reads, as a socket gives them
        buffer[:size] = b"x" * size
        self.read_bytes += size
        return size


class FakeFlaskRequest:
    def __init__(self, stream: io.RawIOBase, content_length: int | None) -> None:
        self.method = "post"
        self.headers = {"Content-Type": "application/json"}
        self.content_length = content_length
        self.stream: Any = stream


def test_a_body_without_a_length_is_read_to_one_byte_over_the_limit() -> None:
    stream = EndlessStream()
    flask_request = FakeFlaskRequest(stream, content_length=None)

    request = from_flask(flask_request, 5000)

    assert len(request.body) == 5001
    assert stream.read_bytes == 5001
    # Whatever runs after the handler (functions-framework's read_request) finds nothing left to wait for.
    assert flask_request.stream.read(1) == b""


def test_a_body_declared_over_the_limit_is_not_read() -> None:
    stream = EndlessStream()
    flask_request = FakeFlaskRequest(stream, content_length=10**9)

    request = from_flask(flask_request, 5000)

    assert (request.body, request.declared_length, stream.read_bytes) == (b"", 10**9, 0)
    assert flask_request.stream.read(1) == b""


def test_a_body_within_the_limit_is_read_whole() -> None:
    request = from_flask(FakeFlaskRequest(io.BytesIO(b'{"a": 1}'), content_length=8), 5000)
    assert request.body == b'{"a": 1}'
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"


class BrokenStream(io.RawIOBase):
    """A body the server cannot read to its end (a malformed chunk, a client gone mid-body)."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise ValueError("Invalid chunk size")


def test_a_body_that_cannot_be_read_is_an_invalid_request() -> None:
    flask_request = FakeFlaskRequest(BrokenStream(), content_length=None)
    with pytest.raises(InvalidRequest, match="could not be read"):
        from_flask(flask_request, 5000)
    assert flask_request.stream.read(1) == b""


@pytest.mark.parametrize("limit", [0, 1, 999, 1000, 1001, 65 * 1024])
def test_read_at_most_reads_exactly_the_limit_of_a_longer_stream(limit: int) -> None:
    stream = EndlessStream()
    assert len(read_at_most(stream, limit)) == limit
    assert stream.read_bytes == limit


# (body, has NUL): the JSON escape counts when its backslash is not itself escaped.
NUL_CASES: list[tuple[bytes, bool]] = [
    (b'{"notes": "a\x00b"}', True),
    (b"\x00", True),
    (b'{"notes": "a\\u0000b"}', True),
    (b'{"notes": "\\u0000"}', True),
    (b'{"notes": "\\U0000"}', True),
    (b'{"no\\u0000tes": "x"}', True),
    (b'{"notes": "\\\\\\u0000"}', True),  # an escaped backslash, then the escape
    (b'{"notes": "\\\\\\\\\\u0000"}', True),  # two escaped backslashes, then the escape
    (b'{"notes": "\\"\\u0000"}', True),  # an escaped quote, then the escape
    (b'{"notes": "\\\\u0000"}', False),  # an escaped backslash, then the text u0000
    (b'{"notes": "\\\\\\\\u0000"}', False),  # two escaped backslashes, then the text
    (b'{"notes": "u0000 and 0000, then \\u0000"}', True),
    (b'{"notes": "\\u00001"}', True),  # NUL followed by the text 1
    (b'{"notes": "\\u0001 \\u1000 \\u00a0 \\u2000"}', False),
    (b'{"notes": "u0000 0000 x\\\\"}', False),
    (b"", False),
]


@pytest.mark.parametrize(("body", "has_nul"), NUL_CASES, ids=[repr(body) for body, _ in NUL_CASES])
def test_contains_nul(body: bytes, has_nul: bool) -> None:
    assert contains_nul(body) is has_nul


def texts(value: Any) -> list[str]:
    """Every key and string of a decoded JSON value."""
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in [key, *texts(item)]]
    if isinstance(value, list):
        return [text for item in value for text in texts(item)]
    return [value] if isinstance(value, str) else []


def test_contains_nul_agrees_with_the_json_parser() -> None:
    checked = 0
    for body, has_nul in NUL_CASES:
        try:
            decoded = json.loads(body)
        except ValueError:
            continue
        assert any("\x00" in text for text in texts(decoded)) is has_nul, body
        checked += 1
    assert checked >= 10


class Notes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: str


def request_with(body: bytes) -> HttpRequest:
    return HttpRequest(method="POST", headers={}, body=body)


@pytest.mark.parametrize("body", [b'{"notes": "a\\u0000b"}', b'{"notes": "a\x00b"}', b'{"notes": "\\\\\\u0000"}'])
def test_parse_body_refuses_a_nul(body: bytes) -> None:
    with pytest.raises(InvalidRequest, match="NUL"):
        parse_body(request_with(body), Notes)


def test_parse_body_keeps_an_escaped_backslash_before_u0000() -> None:
    assert parse_body(request_with(b'{"notes": "\\\\u0000"}'), Notes).notes == "\\u0000"
