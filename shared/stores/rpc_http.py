"""PostgREST's rpc over HTTP, for the client backend (shared/stores/rpc.py): one httpx client per process and
project, and each call's answer or error mapped to this project's errors, as shared/stores/pools.py maps psycopg's.

Each call builds a light `postgrest.SyncPostgrestClient` (the supabase distribution's PostgREST client, not the
whole `supabase` client) over the shared httpx client, with that call's own `apikey` and `Authorization`: a
token travels only with its own request. (`.auth(token)` would set it on a client object that threads share.)
The library's own retries are off: tenacity's (shared/retry.py) are the only ones.
"""

from __future__ import annotations

import logging
import threading
from contextvars import ContextVar
from typing import Any

import httpx
from postgrest import APIError, SyncPostgrestClient

from shared.config import Project, Settings
from shared.errors import EMAIL_UNIQUE_CONSTRAINT, ConcurrentSyncRace, TransientError, Unauthorized

_clients: dict[tuple[str, str], httpx.Client] = {}
_lock = threading.Lock()

# Faults that may pass, by the code of PostgREST's error body: its own for a database it cannot reach or a pool
# it waited for (PGRST000-PGRST003), and the SQLSTATE classes psycopg raises as OperationalError, which the direct
# backend retries (shared/stores/pools.py is_transient): connection, transaction rollback, resources, limits,
# object state, operator intervention, system errors.
_TRANSIENT_CODES = frozenset({"PGRST000", "PGRST001", "PGRST002", "PGRST003"})
_TRANSIENT_CLASSES = ("08", "40", "53", "54", "55", "57", "58", "F0")
# PostgREST's refusals of a JWT: a therapist's token it finds expired (its leeway is 30 s) or invalid.
_TOKEN_REFUSED = frozenset({"PGRST301", "PGRST302", "PGRST303"})
# The HTTP status of the last answer this thread read (an httpx hook): postgrest-py keeps only the body, and a
# gateway's 5xx may have a body without a code.
_status: ContextVar[int] = ContextVar("rpc_status", default=0)


def _keep_status(response: httpx.Response) -> None:
    _status.set(response.status_code)


# httpx logs every request at INFO: the functions' log lines are their own (shared/logs.py), ids only.
logging.getLogger("httpx").setLevel(logging.WARNING)


class RpcError(Exception):
    """PostgREST refused a call for a reason that will not pass (a missing function or grant, a rejected key):
    a fault of the deployment, answered 500 without its details."""

    def __init__(self, function: str, code: str | None) -> None:
        super().__init__(f"rpc {function} failed: {code or 'no code'}")
        self.function = function
        self.code = code


def http_client(project: Project, base_url: str, settings: Settings) -> httpx.Client:
    """The httpx client of `project`, created on first use and kept for the process: keep-alive connections,
    at most DB_POOL_MAX_SIZE of them, and explicit timeouts (a call's read waits the project's statement timeout
    plus HTTP_READ_MARGIN_SECONDS, so that PostgREST's answer to a cancelled statement comes first)."""
    key = (project, base_url)
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is None:
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
            client = httpx.Client(
                timeout=timeout, limits=limits, follow_redirects=False, event_hooks={"response": [_keep_status]}
            )
            _clients[key] = client
    return client


def close_http_clients() -> None:
    """Close every project's httpx client (tests and benchmarks, on the way out)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def call_rpc(
    client: httpx.Client, base_url: str, function: str, params: dict[str, Any], *, key: str, token: str
) -> Any:
    """POST {base_url}/rest/v1/rpc/{function} with `params` as named arguments, the project's API key as `apikey`
    and `token` as the bearer; the function's JSON answer. Faults that may pass become TransientError."""
    rest = SyncPostgrestClient(
        f"{base_url}/rest/v1",
        headers={"apikey": key, "Authorization": f"Bearer {token}"},
        http_client=client,
        retry_enabled=False,
    )
    _status.set(0)
    try:
        return rest.rpc(function, params).execute().data
    except APIError as exc:
        raise _mapped(function, exc, _status.get(), users_token=token != key) from exc
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        raise TransientError(type(exc).__name__) from exc


def _mapped(function: str, exc: APIError, status: int, *, users_token: bool) -> Exception:
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
