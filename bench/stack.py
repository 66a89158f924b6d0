"""The benchmark's stack: a Postgres with fresh bench_ databases, seeded clients, and function servers."""

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from bench.baseline_design_doc import INSERT_CLIENT, client_from_source, client_params
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


BASELINE = Implementation("baseline", "design document baseline", "bench/baseline_design_doc.py")
CREATE_SESSION = Implementation("create_session", "create_session", "functions/create_session/main.py")
PROJECT_B_WEBHOOK = Implementation(
    "project_b_webhook", "project_b_webhook", "functions/project_b_webhook/main.py", target="project_b_webhook"
)


def start_postgres() -> str:
    """TEST_DATABASE_URL, or an embedded Postgres in a temporary directory removed after it stops."""
    if os.environ.get("TEST_DATABASE_URL"):
        return start_server()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    # Registered before pgserver registers its own stop, so it runs after it (atexit is last in, first out).
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    return start_server(data_dir)


def fresh_projects(server_url: str, *, prefix: str = "bench_") -> LocalProjects:
    return prepare_projects(server_url, prefix=prefix, recreate=True)


def drop_projects(projects: LocalProjects) -> None:
    """Drop the bench_ databases (they would otherwise stay on a TEST_DATABASE_URL server)."""
    with psycopg.connect(projects.server_url, autocommit=True) as conn:
        for url in (projects.project_a_url, projects.project_b_url):
            name = conninfo_to_dict(url)["dbname"]
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def functions_env(projects: LocalProjects) -> dict[str, str]:
    """The database URLs a function server gets: the functions' own login, client_sync, as deployed."""
    return {
        "PROJECT_A_DB_URL": projects.project_a_functions_url,
        "PROJECT_B_DB_URL": projects.project_b_functions_url,
    }


def postgres_version(server_url: str) -> str:
    with psycopg.connect(server_url) as conn:
        return str(conn.execute("show server_version").fetchone()[0])


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
    """Ready once it answers HTTP (a GET is a 405 that touches no database)."""
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
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, env=full_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
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
