"""`make dev`: both projects in the embedded Postgres, the functions served on 127.0.0.1, until Ctrl-C.

Starts (or reuses) the embedded Postgres in .dev/pgdata with the databases `project_a` and `project_b`,
applies the migrations and the sample data, serves every entry of SERVICES, writes .dev/env and waits.
Ctrl-C, SIGTERM or SIGHUP stop the services and Postgres; a service that dies on its own stops everything
with a non-zero exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal
from urllib.parse import quote, urlencode

from psycopg.conninfo import conninfo_to_dict

from devtools.localdb import prepare_projects, start_server
from devtools.tokens import sign_access_token

ROOT = Path(__file__).resolve().parent.parent
DEV_DIR = ROOT / ".dev"
PGDATA = DEV_DIR / "pgdata"
ENV_FILE = DEV_DIR / "env"
JWT_SECRET_FILE = DEV_DIR / "jwt_secret"
WEBHOOK_SECRET_FILE = DEV_DIR / "webhook_secret"
BIN = Path(sys.executable).parent

HOST = "127.0.0.1"
DEV_THERAPIST_ID = "11111111-1111-4111-8111-111111111111"  # Dr. Rivera in seed/project_a.sql
TOKEN_LIFETIME_SECONDS = 12 * 3600
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.5

JANE_DOE = "aaaaaaaa-0000-4000-8000-000000000001"  # in both projects, already synced
BOB_WILSON = "bbbbbbbb-0000-4000-8000-000000000003"  # only in Project B


@dataclass(frozen=True)
class Service:
    """A process `make dev` runs from the repository root, started in the order of SERVICES.

    `port`: the next service starts only once this one accepts connections there.
    `url_variable`: the .dev/env entry with its URL. `env`: added to the common environment.
    `database_login`: whose PROJECT_A_DB_URL and PROJECT_B_DB_URL it gets: the functions' login client_sync,
    the administrator's, or none.
    """

    name: str
    argv: tuple[str, ...]
    port: int | None = None
    url_variable: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    database_login: Literal["client_sync", "admin"] | None = None

    @property
    def url(self) -> str | None:
        return f"http://{HOST}:{self.port}" if self.port is not None else None


def function(name: str, port: int) -> Service:
    """functions/<name>/main.py served by functions-framework, target `name`; its URL is <NAME>_URL."""
    return Service(
        name=name,
        argv=(
            str(BIN / "functions-framework"),
            "--target",
            name,
            "--source",
            f"functions/{name}/main.py",
            "--host",
            HOST,
            "--port",
            str(port),
        ),
        port=port,
        url_variable=f"{name.upper()}_URL",
        database_login="client_sync",
    )


# Everything `make dev` serves, in start order (later: sync_client on 8082, project_b_webhook on 8083,
# the local SQS and the relay). Stopped in reverse order.
SQS_PORT = 8085
# moto's server stands in for SQS; its queues live in moto's default account.
SQS_ENDPOINT = f"http://{HOST}:{SQS_PORT}"
RETRY_QUEUE_URL = f"{SQS_ENDPOINT}/123456789012/client-sync-retry"
AWS_ENV = {
    "AWS_ENDPOINT_URL_SQS": SQS_ENDPOINT,
    "AWS_ACCESS_KEY_ID": "dev",
    "AWS_SECRET_ACCESS_KEY": "dev",
    "AWS_DEFAULT_REGION": "us-east-1",
}

SERVICES: tuple[Service, ...] = (
    Service("local_sqs", (str(BIN / "moto_server"), "-H", HOST, "-p", str(SQS_PORT)), port=SQS_PORT),
    function("create_session", 8081),
    function("project_b_webhook", 8083),
    # Sends what Project B's database webhook queued (devtools/webhook_relay.py), as pg_net does: it stands in
    # for part of the platform, so it reads net.http_request_queue as the administrator.
    Service("webhook_relay", (sys.executable, "-m", "devtools.webhook_relay"), database_login="admin"),
)
WEBHOOK_URL = next(service.url for service in SERVICES if service.name == "project_b_webhook")


class Stop(BaseException):
    """Raised by the signal handler: leave whatever is running and shut down."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StackFailed(Exception):
    """The stack cannot start or a service died; the message says which and why."""


@dataclass
class Running:
    service: Service
    process: subprocess.Popen[bytes]


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SignalGate:
    """Ctrl-C, SIGTERM and SIGHUP raise Stop, except while held: then they wait for the end of `held()`."""

    def __init__(self) -> None:
        self.holding = False
        self.pending: list[int] = []

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.holding:
            self.pending.append(signum)
            return
        raise Stop(signum)

    @contextmanager
    def held(self) -> Iterator[None]:
        """For starting a process and recording it, so that nothing started escapes the shutdown."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            raise Stop(self.pending[0])

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.handle)

    @staticmethod
    def ignore() -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


signals = SignalGate()


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def as_url(conninfo: str) -> str:
    """A libpq URL of `conninfo` (pgserver's socket directory percent-encoded), free of spaces and '&'."""
    params = {key: str(value) for key, value in conninfo_to_dict(conninfo).items()}
    host = params.pop("host", "")
    if "," in host:  # several hosts: keep the key=value form
        return conninfo
    user = quote(params.pop("user", ""), safe="")
    password = quote(params.pop("password", ""), safe="")
    port = params.pop("port", "")
    dbname = quote(params.pop("dbname", ""), safe="")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    address = quote(host, safe="") + (f":{port}" if port else "")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{credentials}{address}/{dbname}{query}"


def kept_secret(path: Path) -> str:
    """The secret kept in `path`, created on the first run so that it outlives a restart."""
    if path.exists():
        secret = path.read_text().strip()
        if secret:
            return secret
    secret = secrets.token_urlsafe(48)
    _write_private(path, secret + "\n")
    return secret


def _write_private(path: Path, text: str) -> None:
    """Write `text` readable by the owner only, replacing the file in one step."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    partial.replace(path)


def write_env_file(values: Mapping[str, str]) -> None:
    """.dev/env: KEY=VALUE lines, shell-quoted only where needed, for `source .dev/env`."""
    _write_private(ENV_FILE, "".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items()))


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=POLL_SECONDS):
            return True
    except OSError:
        return False


def check_ports(services: tuple[Service, ...]) -> None:
    taken = [service for service in services if service.port is not None and _port_taken(service.port)]
    if taken:
        names = ", ".join(f"{HOST}:{service.port} ({service.name})" for service in taken)
        raise StackFailed(f"Port already in use: {names}. Stop whatever holds it (another `make dev`?) and retry.")


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the pids of dead processes from pgserver's handle list.

    pgserver stops the server only when the exiting process holds the last handle; a `make dev` killed
    with SIGKILL would otherwise keep its pid there and no later run would ever stop the server.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except ValueError:
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_postgres() -> tuple[str, bool]:
    """The server URL, and whether it is the embedded Postgres this process must stop."""
    embedded = not os.environ.get("TEST_DATABASE_URL")
    if embedded:
        _forget_dead_handles(PGDATA)
        say(f"Starting the embedded Postgres in {PGDATA.relative_to(ROOT)} ...")
    else:
        say("Using the Postgres of TEST_DATABASE_URL (not stopped on exit)")
    return start_server(PGDATA), embedded


def stop_postgres() -> None:
    """pgserver's cleanup: stops the server when this process holds its last handle."""
    import pgserver

    pgserver.get_server(PGDATA, cleanup_mode="stop").cleanup()
    say("Postgres stopped")


def start_service(service: Service, env: Mapping[str, str], databases: Mapping[str, Mapping[str, str]]) -> Running:
    """`databases`: PROJECT_A_DB_URL and PROJECT_B_DB_URL of each login, for the service's `database_login`."""
    say(f"Starting {service.name}: {' '.join(shlex.quote(part) for part in service.argv)}")
    urls = databases[service.database_login] if service.database_login else {}
    process = subprocess.Popen(  # its own process group, so that stopping it reaches every worker
        service.argv, cwd=ROOT, env={**env, **urls, **service.env}, start_new_session=True
    )
    return Running(service, process)


def wait_until_ready(running: Running) -> None:
    service, process = running.service, running.process
    if service.port is None:
        return
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not _answers(service.port):
        code = process.poll()
        if code is not None:
            raise StackFailed(f"{service.name} exited with code {code} before answering on {HOST}:{service.port}")
        if time.monotonic() > deadline:
            raise StackFailed(f"{service.name} did not answer on {HOST}:{service.port} in {READY_TIMEOUT_SECONDS:g} s")
        time.sleep(0.1)
    say(f"{service.name} is serving {service.url}")


def stop_services(started: list[Running]) -> None:
    """SIGTERM to each service's process group (newest first), SIGKILL to what is left after the timeout."""
    for running in reversed(started):
        _signal_group(running.process, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for running in reversed(started):
        try:
            running.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{running.service.name} did not stop in {STOP_TIMEOUT_SECONDS:g} s; killing it")
        # Also reaches workers left behind by a dead parent.
        _signal_group(running.process, signal.SIGKILL)
        running.process.wait()
    if started:
        say("Stopped " + ", ".join(running.service.name for running in started))


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(process.pid, signum)


def install_webhook(project_b_url: str, webhook_secret: str) -> None:
    """Project B's database webhook, pointed at the local project_b_webhook."""
    import psycopg

    with psycopg.connect(project_b_url, autocommit=True) as conn:
        conn.execute("select private.install_client_sync_webhook(%s, %s)", (WEBHOOK_URL, webhook_secret))
    say(f"Project B's database webhook posts to {WEBHOOK_URL}")


def create_retry_queue(env: Mapping[str, str]) -> None:
    import boto3

    sqs = boto3.client(
        "sqs",
        endpoint_url=SQS_ENDPOINT,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    url = sqs.create_queue(QueueName=RETRY_QUEUE_URL.rsplit("/", 1)[1])["QueueUrl"]
    say(f"Retry queue {url}")


def _curl(body: str) -> str:
    return (
        '  curl -sS -i -X POST "$CREATE_SESSION_URL" \\\n'
        '    -H "Authorization: Bearer $DEV_THERAPIST_TOKEN" -H "Content-Type: application/json" \\\n'
        f"    -d '{body}'"
    )


def _psql() -> str:
    """The psql that comes with pgserver, so that nothing needs installing."""
    import pgserver

    path = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    with contextlib.suppress(ValueError):
        return str(path.relative_to(ROOT))
    return str(path)


def print_usage() -> None:
    psql = _psql()
    lines = [
        "",
        f"Ready. Settings and a 12-hour token of therapist {DEV_THERAPIST_ID} are in .dev/env:",
        "",
        "  source .dev/env",
        "",
        "  # Bob Wilson is only in Project B: copied to Project A with the same id, client_synced true",
        "  # (the first time: .dev/pgdata is kept between runs; delete .dev/ to start from the sample data again)",
        _curl(f'{{"client_id": "{BOB_WILSON}", "starts_at": "2030-01-15T10:00:00+00:00"}}'),
        "",
        "  # Jane Doe is in both projects already: client_synced false",
        _curl(
            f'{{"client_id": "{JANE_DOE}", "starts_at": "2030-01-16T10:00:00+00:00", '
            '"duration_minutes": 60, "notes": "Intake"}'
        ),
        "",
        "  # Proactive sync: a new client in Project B shows up in Project A through the database webhook",
        f'  {psql} "$PROJECT_B_DB_URL" -c "with u as (insert into auth.users (email)',
        "    values ('ada@example.com') returning id) insert into public.profiles (id, name, age) select id, 'Ada',",
        '    30 from u"',
        f'  {psql} "$PROJECT_A_DB_URL" -c "select id, full_name, email, status from clients order by created_at"',
        "",
        "  # The functions log in as client_sync ($FUNCTIONS_PROJECT_A_DB_URL, $FUNCTIONS_PROJECT_B_DB_URL):",
        f'  {psql} "$PROJECT_A_DB_URL" -c "select datname, usename, application_name from pg_stat_activity',
        "    where application_name like 'client-sync-%'\"",
        "",
        "Serving: " + ", ".join(f"{service.name} {service.url}" for service in SERVICES if service.url),
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


def run() -> None:
    started: list[Running] = []
    postgres_started = False
    try:
        check_ports(SERVICES)
        DEV_DIR.mkdir(exist_ok=True)
        with signals.held():  # pgserver records its handle only once the server runs
            server_url, postgres_started = start_postgres()
        projects = prepare_projects(server_url, seed=True)
        say("Databases project_a and project_b migrated, sample data loaded")

        secret = kept_secret(JWT_SECRET_FILE)
        webhook_secret = kept_secret(WEBHOOK_SECRET_FILE)
        install_webhook(projects.project_b_url, webhook_secret)
        project_a_url, project_b_url = as_url(projects.project_a_url), as_url(projects.project_b_url)
        functions_a_url = as_url(projects.project_a_functions_url)
        functions_b_url = as_url(projects.project_b_functions_url)
        # The functions log in as client_sync, as deployed; the administrator's URLs are for people (psql).
        databases = {
            "client_sync": {"PROJECT_A_DB_URL": functions_a_url, "PROJECT_B_DB_URL": functions_b_url},
            "admin": {"PROJECT_A_DB_URL": project_a_url, "PROJECT_B_DB_URL": project_b_url},
        }
        env = {
            **{key: value for key, value in os.environ.items() if key not in ("PROJECT_A_DB_URL", "PROJECT_B_DB_URL")},
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            "PROJECT_A_JWT_SECRET": secret,
            "PROJECT_B_WEBHOOK_SECRET": webhook_secret,
            "SYNC_RETRY_QUEUE_URL": RETRY_QUEUE_URL,
            **AWS_ENV,
        }
        for service in SERVICES:
            with signals.held():
                running = start_service(service, env, databases)
                started.append(running)
            wait_until_ready(running)
            if service.name == "local_sqs":
                create_retry_queue(env)

        env_values = {
            "PROJECT_A_DB_URL": project_a_url,
            "PROJECT_B_DB_URL": project_b_url,
            "FUNCTIONS_PROJECT_A_DB_URL": functions_a_url,
            "FUNCTIONS_PROJECT_B_DB_URL": functions_b_url,
        }
        for service in SERVICES:
            if service.url_variable and service.url:
                env_values[service.url_variable] = service.url
        env_values["PROJECT_B_WEBHOOK_SECRET"] = webhook_secret
        env_values["SYNC_RETRY_QUEUE_URL"] = RETRY_QUEUE_URL
        env_values["AWS_ENDPOINT_URL_SQS"] = SQS_ENDPOINT
        env_values["PROJECT_A_JWT_SECRET"] = secret
        env_values["DEV_THERAPIST_ID"] = DEV_THERAPIST_ID
        env_values["DEV_THERAPIST_TOKEN"] = sign_access_token(
            secret, DEV_THERAPIST_ID, expires_in=TOKEN_LIFETIME_SECONDS
        )
        write_env_file(env_values)
        print_usage()

        while True:
            for running in started:
                code = running.process.poll()
                if code is not None:
                    raise StackFailed(f"{running.service.name} exited unexpectedly with code {code}")
            time.sleep(POLL_SECONDS)
    finally:
        signals.ignore()  # a second Ctrl-C must not cut the shutdown short; it is bounded anyway
        if started or postgres_started:
            say("Shutting down ...")
        stop_services(started)
        if postgres_started:
            stop_postgres()


def main() -> int:
    # pgserver asks platformdirs for a runtime directory; the Makefile's XDG_RUNTIME_DIR=/tmp draws a warning.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"platformdirs\.")
    signals.install()
    try:
        run()
    except Stop as stop:
        say(f"{signal.Signals(stop.signum).name} received; stopped")
        return 0
    except StackFailed as exc:
        say(f"ERROR: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
