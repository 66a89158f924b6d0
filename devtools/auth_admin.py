"""A local stand-in for the two endpoints of Supabase Auth (GoTrue) this project calls, as the Auth admin client
(`supabase_auth.SyncGoTrueAdminAPI` over the project's Auth URL, `.../auth/v1`) calls them: `POST {url}/admin/users`
(create_user) and `POST {url}/invite` (invite_user_by_email), answered as Supabase's API gateway and GoTrue answer
them, against the real local Postgres (auth.users), logged in as supabase_auth_admin. Invitations go to a folder,
one .eml file each (devtools/auth_admin_mail.py). Nothing else of GoTrue is here: no sign-in, /verify, sessions,
identities, phones, passwords, hooks or rate limits.

Sources:
- GoTrue (github.com/supabase/auth at bc32168, 2026-08-20): internal/api/api.go (both routes behind
  requireAdminCredentials, middleware.go), auth.go (extractBearerToken's `(?i)^bearer (\\S+$)`, else 401
  no_authorization; parseJWTClaims: golang-jwt v5 with the JWT secret, HS256 only, exp and nbf checked without
  leeway, else 403 bad_jwt "invalid JWT: unable to parse or verify signature, <reason>"; requireAdmin: the role
  claim in GOTRUE_JWT_ADMIN_ROLES' default service_role, supabase_admin, else 403 not_admin), admin.go
  adminUserCreate and invite.go Invite (devtools/auth_admin_users.py), errors.go HandleResponseError and
  apiversions.go (a request's X-Supabase-Api-Version of 2024-01-01 or later: errors are {code, message} and the
  version is echoed; otherwise {code: <status>, error_code, msg} (error_id on a 500), or for a 500 caused by a
  Postgres integrity error, that error's {code, message, hint, detail}; x-sb-error-code either way),
  helpers.go limitRequestBody (1 MiB) and the mailer (devtools/auth_admin_mail.py). GoTrue's router answers 404
  for other routes (as text); the stand-in answers them in the error shape above, code not_found.
- Supabase's API gateway in front: kong.yml's auth-v1 route has key-auth, the `apikey` check of
  devtools/postgrest_auth.py (401 "No API key found in request" / "Invalid API key"); outside /auth/v1, Kong's 404.
- The client, supabase_auth 2.34.1: _sync/gotrue_base_api.py (it sends X-Supabase-Api-Version: 2024-01-01),
  _sync/gotrue_admin_api.py, helpers.py (handle_exception reads `code` only with the version header echoed;
  parse_user_response needs GoTrue's user object).
- HTTP/1.1 framing (devtools/postgrest_http.py), one write per answer, as devtools/postgrest.py.

Where it differs from GoTrue: the duplicate-email check and the insert are serialized per email with an advisory
lock, so two concurrent creates of one email answer 200 and 422 (GoTrue's unique index users_email_partial_key
makes the loser a 500); a user is found by email whatever its aud (rows inserted by hand have none); no
auth.identities or one_time_tokens row is written (`identities` is []); encrypted_password is '' for an
admin-created user too (GoTrue stores the hash of a random password); the parameters it does not implement are
refused with 400 (auth_admin_users.UNSUPPORTED) instead of being applied.

Not logged: tokens, keys, emails, bodies; a request logs its path, status, error code and duration.
"""

from __future__ import annotations

import argparse
import io
import json
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from devtools.auth_admin_checks import api_version, error_answer, require_admin
from devtools.auth_admin_mail import deliver, invitation, invite_link, redirect_target
from devtools.auth_admin_users import CREATE_PARAMS, INVITE_PARAMS, AuthError, create_user, decode_params, invite
from devtools.postgrest_auth import GatewayError, check_api_key
from devtools.postgrest_http import Closed, Refused, Request, Server, read_body, read_request, response

BASE_PATH = "/auth/v1"
ROUTES = {("POST", f"{BASE_PATH}/admin/users"): "create_user", ("POST", f"{BASE_PATH}/invite"): "invite"}
MAX_BODY_BYTES = 1 << 20
DEFAULT_SITE_URL = "http://127.0.0.1:3000"
SERVER = "auth-standin"
# When no pooled connection comes, the message of the handler's first query.
_DATABASE_DOWN = {"create_user": "Database error checking email", "invite": "Database error finding user"}


class AuthStandIn:
    """The stand-in's server and its pool of supabase_auth_admin connections; `url` is the project's Auth URL."""

    def __init__(
        self,
        database_url: str,
        jwt_secret: str,
        *,
        mail_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        site_url: str = DEFAULT_SITE_URL,
        pool_size: int = 4,
        pool_timeout: float = 10.0,
    ) -> None:
        self.jwt_secret = jwt_secret
        self.mail_dir = mail_dir
        self.site_url = site_url
        self.pool_timeout = pool_timeout
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            database_url,
            min_size=1,
            max_size=pool_size,
            kwargs={"application_name": SERVER, "autocommit": True},
            open=False,
            name=SERVER,
        )
        self.server = Server((host, port), _Connection)
        self.server.standin = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{BASE_PATH}"

    def start(self) -> None:
        self.pool.open(wait=False)
        self._thread = threading.Thread(target=self.server.serve_forever, name=SERVER, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join()
        self.pool.close()

    def handle(self, route: str, request: Request, raw: bytes) -> dict[str, Any]:
        """The user JSON of an authorized request to `route`, or AuthError."""
        if len(raw) > MAX_BODY_BYTES:
            raise AuthError(413, "request_entity_too_large", f"Request body too large (max {MAX_BODY_BYTES} bytes)")
        redirect_to = redirect_target(request.query, request.headers, self.site_url)

        def send(address: str, token_hash: str) -> None:
            link = invite_link(self.url, token_hash, redirect_to)
            deliver(self.mail_dir, invitation(address, link, self.site_url))

        params = decode_params(raw, CREATE_PARAMS if route == "create_user" else INVITE_PARAMS)
        try:
            with self.pool.connection(timeout=self.pool_timeout) as conn:
                return create_user(conn, params) if route == "create_user" else invite(conn, params, send)
        except (PoolTimeout, psycopg.Error) as exc:
            cause = exc if isinstance(exc, psycopg.Error) else None
            raise AuthError(500, "unexpected_failure", _DATABASE_DOWN[route], cause) from exc

    def answer(self, request: Request, raw: bytes) -> tuple[int, str, dict[str, str], str | None]:
        """The status, JSON body, extra headers and error code of the answer to `request`."""
        path = request.path
        if path != BASE_PATH and not path.startswith(f"{BASE_PATH}/"):
            return 404, json.dumps({"message": "no Route matched with those values"}), {}, None
        try:
            check_api_key(request.headers, self.jwt_secret)  # the gateway, first
            route = ROUTES.get((request.method, path))
            if route is None:
                raise AuthError(404, "not_found", "The local Auth stand-in serves POST /admin/users and /invite only")
            require_admin(request.headers, self.jwt_secret)
            user = self.handle(route, request, raw)
        except GatewayError as exc:
            return exc.status, json.dumps(exc.body), {}, None
        except AuthError as exc:
            status, body, headers = error_answer(exc, api_version(request.headers))
            return status, json.dumps(body), headers, exc.code
        except Exception as exc:  # handleResponseErrorDefault; only the type is logged (a message may quote a row)
            print(json.dumps({"event": "auth_error", "type": type(exc).__name__}), file=sys.stderr, flush=True)
            message = "Unexpected failure, please check server logs for more information"
            status, body, headers = error_answer(
                AuthError(500, "unexpected_failure", message), api_version(request.headers)
            )
            return status, json.dumps(body), headers, "unexpected_failure"
        return 200, json.dumps(user), {}, None


def _log(path: str, status: int, code: str | None, started: float) -> None:
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    event = {"event": "auth_request", "path": path[:200], "status": status, "code": code}
    print(json.dumps(event | {"duration_ms": duration_ms}), file=sys.stderr, flush=True)


class _Connection(socketserver.StreamRequestHandler):
    """One keep-alive connection: its requests in turn, each answered in one write."""

    disable_nagle_algorithm = True

    def handle(self) -> None:
        standin: AuthStandIn = self.server.standin  # type: ignore[attr-defined]
        rfile = self.rfile
        assert isinstance(rfile, io.BufferedReader)  # makefile("rb") with a buffer: it can peek
        while rfile.peek(1):  # the next request's first bytes, or b"" when the caller closed
            started = time.monotonic()
            path = ""
            try:
                request = read_request(rfile)
                if request is None:
                    return
                path = request.path
                raw = read_body(rfile, self.connection, request)
            except Closed:
                return
            except Refused as refused:
                answer = json.dumps({"message": refused.message})
                self.connection.sendall(response(refused.status, answer, {}, close=True, head=False, server=SERVER))
                return _log(path, refused.status, None, started)
            status, body, headers, code = standin.answer(request, raw)
            head = request.method == "HEAD"
            close = not request.keep_alive
            self.connection.sendall(response(status, body, headers, close=close, head=head, server=SERVER))
            _log(path, status, code, started)
            if close:
                return


@contextmanager
def serving(
    database_url: str,
    jwt_secret: str,
    *,
    mail_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    site_url: str = DEFAULT_SITE_URL,
    pool_size: int = 4,
    pool_timeout: float = 10.0,
) -> Iterator[AuthStandIn]:
    """A running stand-in (port 0: any free port) until the block ends; `database_url` logs in as
    supabase_auth_admin (devtools.localdb.auth_admin_url), `jwt_secret` is the project's."""
    standin = AuthStandIn(
        database_url,
        jwt_secret,
        mail_dir=mail_dir,
        host=host,
        port=port,
        site_url=site_url,
        pool_size=pool_size,
        pool_timeout=pool_timeout,
    )
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


def main(argv: list[str] | None = None) -> None:
    import os
    import signal

    parser = argparse.ArgumentParser(prog="python -m devtools.auth_admin", description=__doc__.splitlines()[0])
    env = os.environ.get
    parser.add_argument("--database-url", default=env("GOTRUE_DB_DATABASE_URL"), help="supabase_auth_admin's URL")
    parser.add_argument("--jwt-secret", default=env("GOTRUE_JWT_SECRET"), help="or GOTRUE_JWT_SECRET")
    parser.add_argument("--mail-dir", default=env("DEV_MAIL_DIR"), help="where invitations go, or DEV_MAIL_DIR")
    parser.add_argument("--site-url", default=env("GOTRUE_SITE_URL", DEFAULT_SITE_URL), help="or GOTRUE_SITE_URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    args = parser.parse_args(argv)
    if not args.database_url or not args.jwt_secret or not args.mail_dir:
        parser.error(
            "--database-url, --jwt-secret and --mail-dir (or GOTRUE_DB_DATABASE_URL, GOTRUE_JWT_SECRET and"
            " DEV_MAIL_DIR) are required"
        )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    mail_dir = Path(args.mail_dir)
    with serving(
        args.database_url, args.jwt_secret, mail_dir=mail_dir, host=args.host, port=args.port, site_url=args.site_url
    ) as standin:
        print(json.dumps({"event": "auth_listening", "url": standin.url}), flush=True)
        with suppress(KeyboardInterrupt):
            stopped.wait()


if __name__ == "__main__":
    main()
