"""The benchmarks' stack: a Postgres with fresh databases, seeded clients, proxies adding a round trip time, and
function servers."""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from bench.baseline_design_doc import INSERT_CLIENT, client_from_source, client_params
from bench.rtt_proxy import RttProxy
from devtools.localdb import LocalProjects, prepare_projects, start_server

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_FRAMEWORK = Path(sys.executable).parent / "functions-framework"

# The same server for both implementations: one gunicorn worker with threads (functions-framework's
# default server when gunicorn is installed), and the functions' default pool size.
SERVER_ENV = {"WORKERS": "1", "THREADS": "16", "DB_POOL_MAX_SIZE": "10", "GUNICORN_LOG_LEVEL": "error"}


@dataclass(frozen=True)
class Implementation:
    """A functions-framework target: `source` relative to the repository root."""

    key: str
    title: str
    source: str
    target: str = "create_session"
    # Reads and writes the tables as each project's service role, as the design document did (its service-role
    # key), rather than calling the SQL surface as the functions' login, client_sync, which may only do that.
    as_service_role: bool = False


BASELINE = Implementation("baseline", "design document baseline", "bench/baseline_design_doc.py", as_service_role=True)
CREATE_SESSION = Implementation("create_session", "create_session", "functions/create_session/main.py")
# What a booking cannot do without under functions-framework, nothing booked (bench/floor_function.py).
FLOOR = Implementation("floor", "floor: the request, the token and one round trip", "bench/floor_function.py")
PROJECT_B_WEBHOOK = Implementation(
    "project_b_webhook", "project_b_webhook", "functions/project_b_webhook/main.py", target="project_b_webhook"
)


def progress(message: str) -> None:
    """A line on stderr of what the benchmark is doing (stdout has its tables)."""
    print(f".. {message}", file=sys.stderr, flush=True)


def _start_postgres() -> str:
    """TEST_DATABASE_URL, or an embedded Postgres in a temporary directory removed after it stops."""
    if os.environ.get("TEST_DATABASE_URL"):
        return start_server()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    # Registered before pgserver registers its own stop, so it runs after it (atexit is last in, first out).
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    return start_server(data_dir)


def fresh_projects(stack: ExitStack, *, prefix: str = "bench_") -> LocalProjects:
    """Postgres started, both projects' databases created afresh (named `prefix`...), dropped when `stack` closes
    (they would otherwise stay on a TEST_DATABASE_URL server)."""
    projects = prepare_projects(_start_postgres(), prefix=prefix, recreate=True)
    stack.callback(_drop_projects, projects)
    return projects


def _drop_projects(projects: LocalProjects) -> None:
    with psycopg.connect(projects.server_url, autocommit=True) as conn:
        for url in (projects.project_a_url, projects.project_b_url):
            name = str(conninfo_to_dict(url)["dbname"])
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def log_dir(keep_logs: Path | None, stack: ExitStack) -> Path:
    """`keep_logs` (created), or a temporary directory removed when `stack` closes."""
    if keep_logs:
        keep_logs.mkdir(parents=True, exist_ok=True)
        return keep_logs
    directory = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    stack.callback(shutil.rmtree, directory, ignore_errors=True)
    return directory


def rtt_proxied(stack: ExitStack, urls: Sequence[str], db_rtt_ms: float) -> list[str]:
    """`urls` as they are (0 ms), or through proxies adding `db_rtt_ms` per round trip, closed with `stack`."""
    if not db_rtt_ms:
        return list(urls)
    return [stack.enter_context(RttProxy(url, delay_seconds=db_rtt_ms / 1000)).url() for url in urls]


def http_rtt_proxy(stack: ExitStack, url: str, db_rtt_ms: float) -> tuple[RttProxy, str]:
    """A proxy adding `db_rtt_ms` per round trip (and counting them) in front of the HTTP server at `url`
    (http://host:port), closed with `stack`, and the URL through it."""
    where = urlsplit(url)
    target = make_conninfo("", host=where.hostname or "127.0.0.1", port=str(where.port or 80))
    proxy = stack.enter_context(RttProxy(target, delay_seconds=db_rtt_ms / 1000))
    return proxy, f"http://127.0.0.1:{proxy.port}"


def vacuum_analyze(*urls: str) -> None:
    """Fresh statistics after a bulk seeding, and no autovacuum of it in the middle of a measurement."""
    for url in urls:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("vacuum analyze")


def as_service_role(admin_url: str) -> str:
    """`admin_url` acting as the service role from its first statement (a startup option: no round trip)."""
    return make_conninfo(admin_url, options="-c role=service_role")


def database_urls(projects: LocalProjects, implementation: Implementation) -> tuple[str, str]:
    """Where `implementation` connects to Project A and Project B, as it would be deployed."""
    if implementation.as_service_role:
        return as_service_role(projects.project_a_url), as_service_role(projects.project_b_url)
    return projects.project_a_functions_url, projects.project_b_functions_url


def functions_env(projects: LocalProjects) -> dict[str, str]:
    """The database URLs a function server gets: the functions' own login, client_sync, as deployed."""
    return {
        "PROJECT_A_DB_URL": projects.project_a_functions_url,
        "PROJECT_B_DB_URL": projects.project_b_functions_url,
    }


def postgres_version(server_url: str) -> str:
    with psycopg.connect(server_url) as conn:
        row = conn.execute("show server_version").fetchone()
    return str(row[0]) if row else "?"


_NEW_PROJECT_B_CLIENTS = """
with users as (
  insert into auth.users (id, email)
  select id, 'bench-' || id || '@example.com' from (select gen_random_uuid() as id from generate_series(1, %s)) ids
  returning id
)
insert into public.profiles (id, name, age, gender_identity, avatar_url)
select id, 'Bench Client ' || left(id::text, 8), 18 + (random() * 60)::int,
       (array['female', 'male', 'non-binary'])[1 + (random() * 2)::int], null
  from users
returning id
"""

_SOURCES = """
select p.id, p.name, u.email, p.age, p.gender_identity, p.avatar_url, p.updated_at
  from public.profiles p join auth.users u on u.id = p.id
 where p.id = any(%s)
"""


def add_clients(projects: LocalProjects, count: int, *, synced_to: UUID | None = None) -> list[UUID]:
    """`count` new Project B clients (random ids, unique emails); also in Project A, owned, if `synced_to`."""
    with psycopg.connect(projects.project_b_url) as conn:
        ids = [row[0] for row in conn.execute(_NEW_PROJECT_B_CLIENTS, (count,))]
        sources = conn.cursor(row_factory=dict_row).execute(_SOURCES, (ids,)).fetchall() if synced_to else []
    if synced_to is not None:
        rows = [client_params(client_from_source(source), synced_to) for source in sources]
        with psycopg.connect(projects.project_a_url) as conn:
            conn.cursor().executemany(INSERT_CLIENT, rows)
    return ids


@dataclass
class FunctionServer:
    """A functions-framework server running one implementation on 127.0.0.1."""

    implementation: Implementation
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def connection(self, timeout: float = 10.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(server: FunctionServer, timeout: float) -> None:
    """Ready once it answers HTTP (a GET of / touches no database: a function answers 405, PostgREST's stand-in
    404)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.implementation.title} server exited:\n{server.log_tail()}")
        conn = server.connection(timeout=1)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
        finally:
            conn.close()
    raise RuntimeError(f"{server.implementation.title} server not ready after {timeout:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def function_server(
    implementation: Implementation, env: dict[str, str], log_dir: Path, *, label: str = ""
) -> Iterator[FunctionServer]:
    """Run `implementation` with functions-framework (stdout and stderr to a file); stopped on exit."""
    port = _free_port()
    log_path = log_dir / f"{implementation.key}{'-' + label if label else ''}.log"
    full_env = {**os.environ, **SERVER_ENV, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    command = [
        str(FUNCTIONS_FRAMEWORK),
        "--target",
        implementation.target,
        "--source",
        str(ROOT / implementation.source),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with _serving(implementation, command, full_env, port, log_path) as server:
        yield server


# PostgREST's stand-in (devtools/postgrest.py) in a process of its own, as PostgREST is a server of its own.
POSTGREST = Implementation("postgrest", "PostgREST stand-in", "devtools/postgrest.py", target="")


@contextlib.contextmanager
def postgrest_server(authenticator_url: str, jwt_secret: str, log_dir: Path, *, label: str) -> Iterator[str]:
    """A PostgREST stand-in logged in as `authenticator_url`, checking keys and tokens against `jwt_secret`;
    yields its project URL ({url}/rest/v1/rpc/<function>), stopped on exit."""
    port = _free_port()
    env = {**os.environ, "PGRST_DB_URI": authenticator_url, "PGRST_JWT_SECRET": jwt_secret, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "devtools.postgrest", "--host", "127.0.0.1", "--port", str(port)]
    with _serving(POSTGREST, command, env, port, log_dir / f"{POSTGREST.key}-{label}.log") as server:
        yield f"http://127.0.0.1:{server.port}"


# Project B's Auth (GoTrue) stand-in (devtools/auth_admin.py) in a process of its own, as GoTrue is a server of its own.
AUTH = Implementation("auth", "Auth stand-in", "devtools/auth_admin.py", target="")


@contextlib.contextmanager
def auth_server(auth_admin_url: str, jwt_secret: str, mail_dir: Path, log_dir: Path) -> Iterator[str]:
    """Project B's Auth stand-in logged in as `auth_admin_url`, its mail in `mail_dir`; yields its root URL (the
    API is under /auth/v1), stopped on exit."""
    port = _free_port()
    env = {
        **os.environ,
        "GOTRUE_DB_DATABASE_URL": auth_admin_url,
        "GOTRUE_JWT_SECRET": jwt_secret,
        "DEV_MAIL_DIR": str(mail_dir),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "devtools.auth_admin", "--host", "127.0.0.1", "--port", str(port)]
    with _serving(AUTH, command, env, port, log_dir / f"{AUTH.key}.log") as server:
        yield f"http://127.0.0.1:{server.port}"


@contextlib.contextmanager
def _serving(
    implementation: Implementation, command: list[str], env: dict[str, str], port: int, log_path: Path
) -> Iterator[FunctionServer]:
    """`command` run with stdout and stderr to `log_path`, once it answers HTTP on `port`; stopped on exit."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    server = FunctionServer(implementation, port, process, log_path)
    try:
        _wait_ready(server, timeout=30)
        yield server
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


# The backfill's stack: 100,000 Project B clients seeded set-based, Project A emptied between runs; no function
# server (the backfill runs in this process, over the functions' own login).

BULK_PREFIX = "bench_bulk_"

# Profiles written over the past weeks (one every 20 s, the newest an hour ago), as an existing Project B's are:
# a reconcile then finds what changed since its watermark, not the seeding. The version trigger is off while
# seeding (session_replication_role = replica) so the rows keep these times; ids are random, emails unique.
_SEED = """
with ids as materialized (
  select gen_random_uuid() as id, n from generate_series(1, %(count)s) as n
), users as (
  insert into auth.users (id, email)
  select id, 'bench-' || id || '@example.com' from ids
  returning id
)
insert into public.profiles (id, name, age, gender_identity, avatar_url, created_at, updated_at)
select i.id, 'Bench Client ' || i.n, 18 + i.n %% 60, (array['female', 'male', 'non-binary'])[1 + i.n %% 3],
       case when i.n %% 2 = 0 then 'https://example.com/avatars/' || i.n || '.png' end,
       t.at, t.at
  from ids i
  cross join lateral (select now() - interval '1 hour' - i.n * interval '20 seconds' as at) t
"""

# A plain, logged table with a primary key, like clients, for the COPY reference.
COPY_TARGET = "bench_copy_target"
_COPY_TARGET_DDL = f"""
create table if not exists public.{COPY_TARGET} (
  id uuid primary key,
  name text,
  email text,
  age integer,
  gender_identity text,
  avatar_url text,
  updated_at timestamptz
)
"""

# The second reference (issue 17): a table shaped exactly like clients (its columns, defaults and checks), with its
# primary key and its unique index on a synced client's email, and nothing else of clients.
COPY_SHAPED = "bench_copy_clients_shape"
_COPY_SHAPED_DDL = f"""
create table if not exists public.{COPY_SHAPED} (
  like public.clients including defaults including constraints,
  primary key (id)
);
create unique index if not exists {COPY_SHAPED}_synced_email on public.{COPY_SHAPED} (lower(email))
  where email is not null and synced_from is not null;
"""

# Project A as the backfill finds it: no clients (sessions go with them: cascade), no conflicts, no watermark.
_EMPTY_PROJECT_A = "truncate public.clients, private.sync_conflicts, private.sync_state cascade"


def seed_project_b(projects: LocalProjects, count: int) -> None:
    """`count` Project B clients (auth.users and profiles) in one statement, then vacuum analyze."""
    with psycopg.connect(projects.project_b_url) as conn:
        conn.execute("set local session_replication_role = replica")
        conn.execute(_SEED, {"count": count})
    vacuum_analyze(projects.project_b_url)
    with psycopg.connect(projects.project_a_url, autocommit=True) as conn:
        conn.execute(_COPY_TARGET_DDL)
        conn.execute(_COPY_SHAPED_DDL)


def empty_project_a(projects: LocalProjects) -> None:
    """No clients in Project A (nor COPY rows), and a checkpoint so that no run pays for another's writes."""
    with psycopg.connect(projects.project_a_url, autocommit=True) as conn:
        conn.execute(_EMPTY_PROJECT_A)
        conn.execute(sql.SQL("truncate public.{}, public.{}").format(*map(sql.Identifier, (COPY_TARGET, COPY_SHAPED))))
        conn.execute("checkpoint")


def settle_project_a(projects: LocalProjects) -> None:
    """Project A's clients vacuumed and analyzed, as autovacuum leaves them a while after a backfill."""
    with psycopg.connect(projects.project_a_url, autocommit=True) as conn:
        conn.execute("vacuum analyze public.clients")
        conn.execute("checkpoint")


def count_rows(url: str, table: str) -> int:
    schema, _, name = table.rpartition(".")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier(schema or "public", name))
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Urls:
    """Where the measured code connects: the functions' login (the backfill), the service role (the design
    document's way, the bare INSERT) and the administrator (the COPY), direct or through proxies that add a round
    trip time."""

    functions_a: str
    functions_b: str
    service_a: str
    service_b: str
    admin_a: str
    admin_b: str


def measured_urls(projects: LocalProjects, stack: ExitStack, db_rtt_ms: float) -> Urls:
    direct = (
        projects.project_a_functions_url,
        projects.project_b_functions_url,
        *database_urls(projects, BASELINE),
        projects.project_a_url,
        projects.project_b_url,
    )
    return Urls(*rtt_proxied(stack, direct, db_rtt_ms))
