"""HTTP adapters: functions-framework (Flask) and API Gateway HTTP API v2 events over one request type."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from shared import metrics
from shared.config import get_settings
from shared.deadline import attempts_until
from shared.errors import (
    ApiError,
    ConfigurationError,
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    UpstreamUnavailable,
)
from shared.logs import log_event

M = TypeVar("M", bound=BaseModel)


F = TypeVar("F", bound=Callable[..., Any])

_READ_SIZE = 64 * 1024

# A JSON escape of NUL: `\u0000` whose backslash is not itself escaped (after an even number of them).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)


def functions_framework_http(function: F) -> F:
    """`@functions_framework.http` when functions-framework serves the file; nothing on Lambda.

    functions-framework imports itself before it loads a function's source, so the check is exact,
    and a Lambda cold start does not pay for importing Flask and the framework.
    """
    if "functions_framework" not in sys.modules:
        return function
    import functions_framework

    return cast(F, functions_framework.http(function))


@dataclass(frozen=True)
class HttpRequest:
    """What a handler needs of a request, whatever carried it; header names are lower-case."""

    method: str
    headers: Mapping[str, str]
    body: bytes
    declared_length: int | None = None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def from_flask(request: Any, max_body_bytes: int) -> HttpRequest:
    """A Flask request, its body read up to one byte over the limit, whether or not it declares a length.

    A body declared larger than the limit is not read at all, and the rest of a longer one is left unread:
    the request's stream is then replaced with an empty one, so that nothing after the handler (such as
    functions-framework's `read_request`, which reads whatever is left before answering) waits for it.
    """
    headers = {key.lower(): value for key, value in request.headers.items()}
    declared = request.content_length
    over_limit = declared is not None and declared > max_body_bytes
    try:
        body = b"" if over_limit else read_at_most(request.stream, max_body_bytes + 1)
    except Exception as exc:  # the server's own framing errors (a malformed chunk, a client gone mid-body)
        raise InvalidRequest("The request body could not be read") from exc
    finally:
        request.stream = io.BytesIO()
    return HttpRequest(method=request.method.upper(), headers=headers, body=body, declared_length=declared)


def read_at_most(stream: IO[bytes], limit: int) -> bytes:
    """Up to `limit` bytes of `stream`, in reads of at most 64 KiB; fewer only at its end."""
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = stream.read(min(remaining, _READ_SIZE))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def to_flask(response: HttpResponse) -> tuple[str, int, dict[str, str]]:
    return (
        json.dumps(response.body, default=str),
        response.status,
        {"Content-Type": "application/json", **response.headers},
    )


def from_lambda(event: Mapping[str, Any]) -> HttpRequest:
    """An API Gateway HTTP API (payload format 2.0) or Lambda function URL event."""
    headers = {str(key).lower(): str(value) for key, value in (event.get("headers") or {}).items()}
    method = (event.get("requestContext") or {}).get("http", {}).get("method") or event.get("httpMethod") or ""
    raw = event.get("body") or ""
    try:
        body = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw.encode()
    except ValueError:
        body = b"\xff"  # undecodable: not UTF-8, so JSON parsing fails below with a 400
    return HttpRequest(method=method.upper(), headers=headers, body=body)


def to_lambda(response: HttpResponse) -> dict[str, Any]:
    return {
        "statusCode": response.status,
        "headers": {"Content-Type": "application/json", **response.headers},
        "body": json.dumps(response.body, default=str),
        "isBase64Encoded": False,
    }


def require_json_post(request: HttpRequest, max_body_bytes: int) -> None:
    """405, 413 and 415 checks, in that order, before anything reads the body."""
    if request.method != "POST":
        raise MethodNotAllowed("Use POST", allow="POST")
    size = max(len(request.body), request.declared_length or 0)
    if size > max_body_bytes:
        raise PayloadTooLarge(f"The body is over {max_body_bytes // 1024} KiB")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")


def contains_nul(body: bytes) -> bool:
    """Whether `body` holds a NUL character, raw or as the JSON escape `\\u0000`."""
    return b"\x00" in body or (b"0000" in body and _ESCAPED_NUL.search(body) is not None)


def parse_body(request: HttpRequest, model: type[M]) -> M:
    """The body as `model`; 400 naming every bad field, or for a NUL character anywhere (Postgres text
    cannot hold one)."""
    if contains_nul(request.body):
        raise InvalidRequest("The body must not contain NUL characters (\\u0000)")
    try:
        return model.model_validate_json(request.body)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc), fields=_fields(exc)) from None


def _fields(exc: ValidationError) -> list[str]:
    names = []
    for error in exc.errors():
        if error["type"] in ("json_invalid", "model_type"):
            continue
        name = ".".join(str(part) for part in error["loc"]) or "body"
        if name not in names:
            names.append(name)
    return names


def _describe(exc: ValidationError) -> str:
    errors = exc.errors()
    if any(error["type"] == "json_invalid" for error in errors):
        return "The body is not valid JSON"
    if any(error["type"] == "model_type" for error in errors):
        return "The body must be a JSON object"
    parts = []
    for error in errors:
        name = ".".join(str(part) for part in error["loc"]) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{name}: {message}")
    return "Invalid fields: " + "; ".join(parts)


def error_response(exc: ApiError, retry_after_seconds: int) -> HttpResponse:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if "fields" in exc.details:
        body["fields"] = exc.details["fields"]
    headers: dict[str, str] = {}
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = str(exc.details.get("allow", "POST"))
    if isinstance(exc, UpstreamUnavailable):
        headers["Retry-After"] = str(retry_after_seconds)
    return HttpResponse(status=exc.status, body={"error": body}, headers=headers)


def answer_flask(
    function: str, request: Any, handle: Callable[[HttpRequest], HttpResponse], max_body_bytes: Callable[[], int]
) -> tuple[str, int, dict[str, str]]:
    """The functions-framework target's answer: `handle` of the request, errors mapped (reading the body limit,
    and with it the settings, included)."""
    return to_flask(answer(function, lambda: handle(from_flask(request, max_body_bytes()))))


def answer_lambda(
    function: str, event: Mapping[str, Any], handle: Callable[[HttpRequest], HttpResponse]
) -> dict[str, Any]:
    """The Lambda handler's answer: `handle` of the API Gateway v2 event, errors mapped."""
    return to_lambda(answer(function, lambda: handle(from_lambda(event))))


def answer(function: str, handle: Callable[[], HttpResponse]) -> HttpResponse:
    """Run a handler; known errors become their JSON answer, anything else a 500 without a trace."""
    try:
        with metrics.invocation(function), attempts_until(get_settings().request_deadline_seconds):
            return handle()
    except ApiError as exc:
        log_event("request_refused", function=function, status=exc.status, error_code=exc.code)
        return error_response(exc, get_settings().retry_after_seconds)
    except ConfigurationError as exc:
        log_event("configuration_refused", logging.ERROR, function=function, reason=str(exc))
        return HttpResponse(500, {"error": {"code": "internal_error", "message": "Internal error"}})
    except Exception as exc:
        log_event("request_failed", logging.ERROR, function=function, error_type=type(exc).__name__)
        return HttpResponse(500, {"error": {"code": "internal_error", "message": "Internal error"}})
