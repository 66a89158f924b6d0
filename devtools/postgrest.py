"""A local stand-in for the one endpoint of a Supabase project's Data API this project calls:
`POST {url}/rest/v1/rpc/<function>`, answered as Supabase's API gateway and PostgREST answer it, against the
real local Postgres. Nothing else of PostgREST (tables, GET on functions, filters, embedding) is here.

Sources:
- PostgREST docs (docs.postgrest.org; the repository's docs/ at commit 4834678): references/api/functions.rst
  ("Functions as RPC": a JSON object's keys are the named arguments, defaults may be left out, overloads by
  argument names, scalar or set answers), references/errors.rst (the SQLSTATE -> HTTP status table, the PGRST
  codes: PGRST000/001/003 connection, PGRST101/102/106/107/125 request, PGRST202/203 schema cache,
  PGRST301/303 JWT), references/auth.rst (the authenticator login that takes the JWT's `role` claim for the
  transaction, `anon` when the JWT has none), references/transactions.rst; CHANGELOG #2001 (a function returning
  void answers 204 No Content with no Content-Type).
- PostgREST's source: src/library/PostgREST/Error.hs (statuses, messages, WWW-Authenticate),
  Auth/Jwt.hs (exp, nbf and iat checked with 30 s of leeway; the `aud` claim is not checked without a configured
  jwt-aud, as on Supabase). The database half is devtools/postgrest_rpc.py.
- Supabase's API gateway (supabase/supabase docker/volumes/api/kong.yml: key-auth on `apikey` with the anon and
  service_role keys as consumers): no `apikey` -> 401 "No API key found in request", another key -> 401
  "Invalid API key" (the bodies the hosted gateway answers). The stand-in takes any HS256 JWT signed with the
  project's secret whose role is anon or service_role as a key. Without `Authorization`, the key is the JWT.

- HTTP/1.1 framing (devtools/postgrest_http.py): RFC 9112; each answer goes out in one write with TCP_NODELAY, as
  PostgREST's server (Warp) sends it.

Not logged: tokens, keys, bodies and error messages (they can quote a row); a request logs its function, status,
PostgREST code and duration.
"""

from __future__ import annotations

import argparse
import json
import re
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from devtools.postgrest_auth import ANON_ROLE, GatewayError, authenticate
from devtools.postgrest_http import Closed, Refused, Request, Server, read_body, read_request, response
from devtools.postgrest_rpc import ApiError, SchemaCache, call, database_error

_RPC_PATH = re.compile(r"^/rest/v1/rpc/([^/]+)$")
_JSON_TYPES = ("application/json", "application/*", "*/*")


def _accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    return any(part.split(";")[0].strip().lower() in _JSON_TYPES for part in accept.split(","))


def parse_body(raw: bytes) -> tuple[str, frozenset[str]]:
    """The body as JSON text and its keys; an empty body is no arguments, as for PostgREST."""
    if not raw.strip():
        return "{}", frozenset()
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "PGRST102", "Empty or invalid json") from None
    if not isinstance(value, dict):
        # PostgREST would call with no arguments; the functions here take named ones only.
        raise ApiError(400, "PGRST102", "The body must be a JSON object of the function's arguments")
    return raw.decode(), frozenset(value)


class PostgrestStandIn:
    """The stand-in's server and its pool of `authenticator` connections; `url` is the project's URL."""

    def __init__(
        self,
        database_url: str,
        jwt_secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pool_size: int = 10,
        pool_timeout: float = 10.0,
    ) -> None:
        self.database_url = database_url
        self.jwt_secret = jwt_secret
        self.pool_timeout = pool_timeout
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            database_url,
            min_size=1,
            max_size=pool_size,
            kwargs={"application_name": "postgrest-standin", "autocommit": True},
            open=False,
            name="postgrest-standin",
        )
        self.schema_cache = SchemaCache()
        self.server = Server((host, port), _Connection)
        self.server.standin = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self.pool.open(wait=False)
        self._thread = threading.Thread(target=self.server.serve_forever, name="postgrest-standin", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join()
        self.pool.close()

    def unreachable(self) -> ApiError:
        """After waiting for a pooled connection in vain: is the database down (503) or the pool busy (504)?"""
        try:
            with psycopg.connect(self.database_url, connect_timeout=5):
                pass
        except psycopg.OperationalError as exc:
            return ApiError(503, "PGRST000", "Database connection error.", details=str(exc).strip() or None)
        return ApiError(504, "PGRST003", "Timed out acquiring connection from connection pool.")

    def rpc(
        self, name: str, raw: bytes, headers: dict[str, str], path: str, role: str, claims: dict[str, Any]
    ) -> tuple[int, str | None]:
        """The status and JSON answer of an authenticated call (None: no content)."""
        for profile in ("content-profile", "accept-profile"):
            if headers.get(profile, "public") != "public":
                hint = "Only the following schemas are exposed: public"
                raise ApiError(406, "PGRST106", f"Invalid schema: {headers[profile]}", hint=hint)
        if not _accepts_json(headers.get("accept")):
            raise ApiError(406, "PGRST107", f"None of these media types are available: {headers['accept']}")
        body, keys = parse_body(raw)
        request_headers = {key: value for key, value in headers.items() if key != "cookie"}
        try:
            with self.pool.connection(timeout=self.pool_timeout) as conn:
                answer = call(conn, name, body, keys, role, claims, path, request_headers, self.schema_cache)
        except PoolTimeout:
            raise self.unreachable() from None
        except psycopg.Error as exc:
            raise database_error(exc, role, ANON_ROLE) from None
        return (204, None) if answer is None else (200, answer)

    def answer(
        self, request: Request, function: str | None, raw: bytes
    ) -> tuple[int, str | None, dict[str, str], str | None]:
        """The status, JSON body, extra headers and PostgREST code of the answer to `request`."""
        path = request.path
        if path != "/rest/v1" and not path.startswith("/rest/v1/"):
            return 404, json.dumps({"message": "no Route matched with those values"}), {}, None
        try:
            role, claims = authenticate(request.headers, self.jwt_secret)  # the gateway and PostgREST: first
            if function is None:
                raise ApiError(404, "PGRST125", "Invalid path specified in request URL")
            if request.method != "POST":
                raise ApiError(405, "PGRST101", f"Cannot use the {request.method} method on RPC")
            status, answer = self.rpc(function, raw, request.headers, path, role, claims)
        except GatewayError as exc:
            return exc.status, json.dumps(exc.body), {}, None
        except ApiError as exc:
            return exc.status, json.dumps(exc.body()), exc.headers, exc.code
        return status, answer, {}, None


def _log(function: str | None, status: int, code: str | None, started: float) -> None:
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    event = {"event": "postgrest_request", "function": function, "status": status, "code": code}
    # On stderr: stdout carries the functions' own log lines when the stand-in runs in their process (tests).
    print(json.dumps(event | {"duration_ms": duration_ms}), file=sys.stderr, flush=True)


class _Connection(socketserver.StreamRequestHandler):
    """One keep-alive connection: its requests in turn, each answered in one write."""

    disable_nagle_algorithm = True

    def handle(self) -> None:
        standin: PostgrestStandIn = self.server.standin  # type: ignore[attr-defined]
        while self.rfile.peek(1):  # the next request's first bytes, or b"" when the caller closed
            started = time.monotonic()
            function = None
            try:
                request = read_request(self.rfile)
                if request is None:
                    return
                match = _RPC_PATH.match(request.path)
                function = unquote(match.group(1)) if match else None
                raw = read_body(self.rfile, self.connection, request)
            except Closed:
                return
            except Refused as refused:
                answer = json.dumps({"message": refused.message})
                self.connection.sendall(response(refused.status, answer, {}, close=True, head=False))
                return _log(function, refused.status, None, started)
            status, body, headers, code = standin.answer(request, function, raw)
            head = request.method == "HEAD"
            self.connection.sendall(response(status, body, headers, close=not request.keep_alive, head=head))
            _log(function, status, code, started)
            if not request.keep_alive:
                return
        return


@contextmanager
def serving(
    database_url: str,
    jwt_secret: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    pool_size: int = 10,
    pool_timeout: float = 10.0,
) -> Iterator[PostgrestStandIn]:
    """A running stand-in (port 0: any free port) until the block ends; `database_url` logs in as authenticator."""
    standin = PostgrestStandIn(
        database_url, jwt_secret, host=host, port=port, pool_size=pool_size, pool_timeout=pool_timeout
    )
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


def main(argv: list[str] | None = None) -> None:
    import os
    import signal

    parser = argparse.ArgumentParser(prog="python -m devtools.postgrest", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("PGRST_DB_URI"), help="authenticator's URL")
    parser.add_argument("--jwt-secret", default=os.environ.get("PGRST_JWT_SECRET"), help="or PGRST_JWT_SECRET")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    if not args.database_url or not args.jwt_secret:
        parser.error("--database-url and --jwt-secret (or PGRST_DB_URI and PGRST_JWT_SECRET) are required")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with serving(args.database_url, args.jwt_secret, host=args.host, port=args.port) as standin:
        print(json.dumps({"event": "postgrest_listening", "url": standin.url}), flush=True)
        with suppress(KeyboardInterrupt):
            stopped.wait()


if __name__ == "__main__":
    main()
