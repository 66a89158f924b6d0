"""PostgREST's rpc over HTTP, for the client backend (shared/stores/rpc.py): one keep-alive httpx transport per
process and project, and each call's answer or error mapped to this project's errors, as shared/stores/pools.py
maps psycopg's.

The supabase distribution at its lightest level that works: httpx's transport (its connection pool, the layer the
distribution's `postgrest` client sends through), not `postgrest`'s request builder nor an `httpx.Client`. Each
call is one `POST {url}/rest/v1/rpc/<function>` with the function's named arguments as its JSON body and that
call's own `apikey` and `Authorization`: a token travels only with its own request, and no state is shared between
requests (no client-wide auth header, as postgrest-py's `.auth()` sets; no cookie jar, as an `httpx.Client` keeps).
Nothing here retries (the transport's connect retries are 0, and postgrest-py's own retries are not in the path):
tenacity's (shared/retry.py) are the only ones. The transport does not read the environment's proxy variables
(HTTPS_PROXY, NO_PROXY), as an `httpx.Client` would: the projects' URLs are reached directly.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from shared.config import Project, Settings
from shared.errors import EMAIL_UNIQUE_CONSTRAINT, ConcurrentSyncRace, TransientError, Unauthorized

# Faults that may pass, by the code of PostgREST's error body: its own for a database it cannot reach or a pool
# it waited for (PGRST000-PGRST003), and the SQLSTATE classes psycopg raises as OperationalError, which the direct
# backend retries (shared/stores/pools.py is_transient): connection, transaction rollback, resources, limits,
# object state, operator intervention, system errors.
_TRANSIENT_CODES = frozenset({"PGRST000", "PGRST001", "PGRST002", "PGRST003"})
_TRANSIENT_CLASSES = ("08", "40", "53", "54", "55", "57", "58", "F0")
# PostgREST's refusals of a JWT: a therapist's token it finds expired (its leeway is 30 s) or invalid.
_TOKEN_REFUSED = frozenset({"PGRST301", "PGRST302", "PGRST303"})


class RpcError(Exception):
    """PostgREST refused a call for a reason that will not pass (a missing function or grant, a rejected key):
    a fault of the deployment, answered 500 without its details."""

    def __init__(self, function: str, code: str | None) -> None:
        super().__init__(f"rpc {function} failed: {code or 'no code'}")
        self.function = function
        self.code = code


@dataclass(frozen=True)
class PostgrestError:
    """PostgREST's error body {code, message, details, hint} (a gateway's may lack any of them)."""

    code: str | None
    message: str
    details: str | None

    @classmethod
    def of(cls, body: bytes) -> PostgrestError:
        try:
            value = json.loads(body)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            return cls(None, "", None)
        code, message, details = (value.get(key) for key in ("code", "message", "details"))
        return cls(
            code if isinstance(code, str) else None,
            message if isinstance(message, str) else "",
            details if isinstance(details, str) else None,
        )


@dataclass(frozen=True)
class Endpoint:
    """A project's PostgREST: the transport its calls go through and their timeouts."""

    transport: httpx.BaseTransport
    timeout: dict[str, float | None]


_endpoints: dict[tuple[str, str], Endpoint] = {}
_lock = threading.Lock()


def http_endpoint(project: Project, base_url: str, settings: Settings) -> Endpoint:
    """The endpoint of `project`, created on first use and kept for the process: keep-alive connections, at most
    DB_POOL_MAX_SIZE of them, and explicit timeouts (a call's read waits the project's statement timeout plus
    HTTP_READ_MARGIN_SECONDS, so that PostgREST's answer to a cancelled statement comes first)."""
    key = (project, base_url)
    endpoint = _endpoints.get(key)
    if endpoint is not None:
        return endpoint
    with _lock:
        endpoint = _endpoints.get(key)
        if endpoint is None:
            statement_seconds = getattr(settings, f"{project}_statement_timeout_ms") / 1000
            timeout = httpx.Timeout(
                connect=settings.http_connect_timeout_seconds,
                read=statement_seconds + settings.http_read_margin_seconds,
                write=settings.http_connect_timeout_seconds,
                pool=settings.db_pool_timeout_seconds,
            )
            limits = httpx.Limits(
                max_connections=settings.db_pool_max_size, max_keepalive_connections=settings.db_pool_max_size
            )
            endpoint = Endpoint(httpx.HTTPTransport(limits=limits, retries=0), timeout.as_dict())
            _endpoints[key] = endpoint
    return endpoint


def close_http_clients() -> None:
    """Close every project's transport (tests and benchmarks, on the way out)."""
    with _lock:
        for endpoint in _endpoints.values():
            endpoint.transport.close()
        _endpoints.clear()


def call_rpc(endpoint: Endpoint, base_url: str, function: str, params: dict[str, Any], *, key: str, token: str) -> Any:
    """POST {base_url}/rest/v1/rpc/{function} with `params` as named arguments, the project's API key as `apikey`
    and `token` as the bearer; the function's JSON answer (None for no content). Faults that may pass become
    TransientError."""
    request = httpx.Request(
        "POST",
        f"{base_url}/rest/v1/rpc/{function}",
        headers={
            "apikey": key,
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            # The schema the functions are in, as postgrest-py names it: not whichever PostgREST exposes first.
            "Content-Profile": "public",
            "Accept-Profile": "public",
        },
        content=json.dumps(params, allow_nan=False).encode(),
        extensions={"timeout": endpoint.timeout},
    )
    try:
        response = endpoint.transport.handle_request(request)
        try:
            body = response.read()
        finally:
            response.close()
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise TransientError(type(exc).__name__) from exc
    except httpx.DecodingError:
        raise RpcError(function, None) from None  # a body its Content-Encoding does not decode
    if response.status_code >= 300:
        raise _mapped(function, PostgrestError.of(body), response.status_code, users_token=token != key)
    try:
        return json.loads(body) if body else None
    except ValueError:
        raise RpcError(function, None) from None  # a 2xx that is not JSON: not PostgREST's answer


def _mapped(function: str, exc: PostgrestError, status: int, *, users_token: bool) -> Exception:
    code = exc.code or ""
    sqlstate = len(code) == 5 and code.isalnum() and code.upper() == code
    if code in _TRANSIENT_CODES or (sqlstate and code.startswith(_TRANSIENT_CLASSES)):
        return TransientError(f"PostgREST {code}")
    if status >= 500 and not sqlstate and not code.startswith("PGRST"):  # a gateway's answer, not PostgREST's
        return TransientError(f"HTTP {status}")
    if code == "23505" and EMAIL_UNIQUE_CONSTRAINT in f"{exc.message} {exc.details}":
        return ConcurrentSyncRace(EMAIL_UNIQUE_CONSTRAINT)
    if code in _TOKEN_REFUSED and users_token:
        return Unauthorized("Project A refused the token")
    return RpcError(function, exc.code)
