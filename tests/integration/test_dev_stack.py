"""`make dev` stops everything it started, whenever and however it is stopped (issue 7).

Runs the real stack (`python -m devtools.dev`, embedded Postgres, both functions, the local SQS, the relay) in a
DEV_DIR of its own on ports of its own (DEV_PORT_BASE), uses it, stops it at several moments with SIGINT, SIGTERM
and SIGHUP, and checks that it exits in time with code 0, that no process it started is left (every process
carries a marker in its environment, inherited from the stack; the pids recorded before the stop are checked too,
the postmaster's included), that every port is free and that no Postgres runs on its data directory. The stack
always uses the embedded Postgres here, never TEST_DATABASE_URL's server.

Every test runs over both backends of the stack (`make dev` and `make dev BACKEND=supabase`: the functions over
Postgres, or over each project's API, the PostgREST stand-ins), each with a DEV_DIR and ports of its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import pty
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pgserver
import psutil
import psycopg
import pytest

from devtools import postgres
from devtools.auth_admin_mail import read_messages
from devtools.config import (
    CREATE_SESSION_OFFSET,
    PROJECT_A_API_OFFSET,
    PROJECT_B_API_OFFSET,
    PROJECT_B_AUTH_OFFSET,
    PROJECT_B_WEBHOOK_OFFSET,
    ROOT,
    SQS_OFFSET,
    STACK_BACKENDS,
)
from devtools.devdir import read_env_file
from tests.markdown import block_after

MARKER = "DEV_STACK_TEST_RUN"
READY_SECONDS = 120.0  # a first start initialises Postgres; the machine may be busy with other tests
STOP_SECONDS = 40.0  # services get 10 s before SIGKILL, Postgres 15 s before immediate shutdown
LOAD_SECONDS = float(os.environ.get("DEV_STACK_TEST_LOAD_SECONDS", "10"))
JANE_DOE = "aaaaaaaa-0000-4000-8000-000000000001"
OFFSETS = (
    CREATE_SESSION_OFFSET,
    PROJECT_B_WEBHOOK_OFFSET,
    SQS_OFFSET,
    PROJECT_A_API_OFFSET,
    PROJECT_B_API_OFFSET,
    PROJECT_B_AUTH_OFFSET,
)
# What DEV_DIR/env carries on either backend, and what it adds with BACKEND=supabase.
ENV_KEYS = {
    "PROJECT_A_DB_URL",
    "PROJECT_B_DB_URL",
    "FUNCTIONS_PROJECT_A_DB_URL",
    "FUNCTIONS_PROJECT_B_DB_URL",
    "CREATE_SESSION_URL",
    "SYNC_CLIENT_URL",
    "PROJECT_B_WEBHOOK_URL",
    "PROJECT_B_WEBHOOK_SECRET",
    "SYNC_RETRY_QUEUE_URL",
    "AWS_ENDPOINT_URL_SQS",
    "PROJECT_A_JWT_SECRET",
    "DEV_THERAPIST_ID",
    "DEV_THERAPIST_TOKEN",
    "DEV_SERVICE_ROLE_TOKEN",
    "DEV_BACKEND",
    "PROJECT_B_AUTH_URL",
    "PROJECT_B_SERVICE_ROLE_KEY",
    "DEV_MAIL_DIR",
}
SUPABASE_ENV_KEYS = {"PROJECT_A_URL", "PROJECT_A_SERVICE_ROLE_KEY", "PROJECT_B_URL"}


def _free_port_base() -> int:
    """Ports below the ephemeral range, so that no outgoing connection takes one meanwhile."""
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    for _ in range(200):
        base = random.randrange(10000, max(ephemeral - 10, 10010), 10)
        if all(_port_free(base + offset) for offset in OFFSETS):
            return base
    raise RuntimeError("no free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie (a zombie holds no port or file; pid 1 may never reap it)."""
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())[:120]}"
    except psutil.Error:
        return f"{process.pid} (gone meanwhile)"


def _marked(marker: str) -> list[psutil.Process]:
    """Live processes whose environment carries `marker`: everything the stack started, however far down."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and process.environ().get(MARKER) == marker and _alive(process):
                found.append(process)
        except psutil.Error:
            continue
    return found


@dataclass
class Site:
    """A DEV_DIR and ports shared by the runs of this module (the data directory is kept between runs)."""

    dev_dir: Path
    port_base: int
    backend: str = "direct"
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def ports(self) -> list[int]:
        apis = (PROJECT_A_API_OFFSET, PROJECT_B_API_OFFSET) if self.backend == "supabase" else ()
        offsets = (CREATE_SESSION_OFFSET, PROJECT_B_WEBHOOK_OFFSET, SQS_OFFSET, PROJECT_B_AUTH_OFFSET, *apis)
        return [self.port_base + offset for offset in offsets]


class Run:
    """One `python -m devtools.dev`, its output in a file (or on a pseudo-terminal that can be hung up)."""

    def __init__(self, site: Site, log: Path, *, terminal: bool = False, env: dict[str, str] | None = None) -> None:
        self.site = site
        self.log = log
        stack_env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("TEST_DATABASE_URL", "PROJECT_A_DB_URL", "PROJECT_B_DB_URL")
        }
        stack_env.update(
            DEV_DIR=str(site.dev_dir),
            DEV_PORT_BASE=str(site.port_base),
            DEV_RECONCILE_SECONDS="3600",  # no scheduled reconcile copies Bob Wilson before the README's curl does
            PYTHONPATH=str(ROOT),
            **{MARKER: site.marker},
        )
        stack_env.update(env or {})  # the scenario's own
        self._hang_up = threading.Event()
        self._master: int | None = None
        argv = [sys.executable, "-m", "devtools.dev", "--backend", site.backend]  # as `make dev BACKEND=...` runs it
        if terminal:
            self._master, slave = pty.openpty()
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter and the stack's module
                argv, cwd=ROOT, env=stack_env, stdout=slave, stderr=slave, start_new_session=True
            )
            os.close(slave)
            threading.Thread(target=self._copy_terminal, daemon=True).start()
        else:
            with log.open("ab") as out:
                self.process = subprocess.Popen(  # noqa: S603 - as above
                    argv, cwd=ROOT, env=stack_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        self.before: list[psutil.Process] = []  # the stack's processes just before the stop
        self.stopped_at: float | None = None

    def _copy_terminal(self) -> None:
        assert self._master is not None
        with self.log.open("ab") as out:
            while not self._hang_up.is_set():
                try:
                    data = os.read(self._master, 65536)
                except OSError:
                    break
                if not data:
                    break
                out.write(data.replace(b"\r\n", b"\n"))
                out.flush()
        os.close(self._master)  # from now on the stack's writes to its terminal fail (EIO), as after a hangup

    def hang_up(self) -> None:
        self._hang_up.set()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, text: str, timeout: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.process.poll() is None, f"exited ({self.process.returncode}) before {text!r}:\n{self.tail()}"
            assert time.monotonic() < deadline, f"no {text!r} in {timeout:g} s:\n{self.tail()}"
            time.sleep(0.02)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def env(self) -> dict[str, str]:
        return read_env_file(self.site.dev_dir / "env")

    def tree(self) -> list[psutil.Process]:
        """Every process of the stack now: its descendants, the postmaster with its children, the marked ones."""
        found: dict[int, psutil.Process] = {}
        with contextlib.suppress(psutil.Error):
            me = psutil.Process(self.process.pid)
            found.update({p.pid: p for p in [me, *me.children(recursive=True)]})
        master = postgres.postmaster(self.site.dev_dir / "pgdata")
        if master is not None:
            with contextlib.suppress(psutil.Error):
                found.update({p.pid: p for p in [master, *master.children(recursive=True)]})
        found.update({p.pid: p for p in _marked(self.site.marker)})
        return list(found.values())

    def stop(self, *signums: int, group: bool = False, together: bool = False) -> None:
        """Record the stack's processes, then send `signums` (to its process group, or all pending at once)."""
        self.before = self.tree()
        self.stopped_at = time.monotonic()
        if together:  # stopped, the process cannot take one before the next arrives
            self.process.send_signal(signal.SIGSTOP)
        for signum in signums:
            if group:
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)
        if together:
            self.process.send_signal(signal.SIGCONT)


@dataclass
class Load:
    """Bookings and Project B writes in threads until stopped; statuses counted."""

    run: Run
    statuses: Counter[int | str] = field(default_factory=Counter)
    webhook_ids: list[str] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, bookers: int = 3) -> Load:
        env = self.run.env()
        for _ in range(bookers):
            self.threads.append(threading.Thread(target=self._book, args=(env,), daemon=True))
        self.threads.append(threading.Thread(target=self._write_profiles, args=(env,), daemon=True))
        for thread in self.threads:
            thread.start()
        return self

    def _book(self, env: dict[str, str]) -> None:
        while not self.stopped.is_set():
            try:
                self.statuses[book(env)] += 1
            except Exception as exc:
                self.statuses[type(exc).__name__] += 1
                time.sleep(0.05)

    def _write_profiles(self, env: dict[str, str]) -> None:
        while not self.stopped.is_set():
            with contextlib.suppress(Exception):  # the stack may be stopping
                self.webhook_ids.append(add_project_b_client(env))
            self.stopped.wait(0.2)

    def stop(self) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(30)


def book(env: dict[str, str], client_id: str = JANE_DOE) -> int:
    """POST a booking with the env file's token; the status."""
    port = int(env["CREATE_SESSION_URL"].rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        hour = random.randrange(0, 200000)  # a random hour from 2031 on
        starts_at = time.strftime("%Y-%m-%dT%H:00:00+00:00", time.gmtime(1924992000 + hour * 3600))
        body = {"client_id": client_id, "starts_at": starts_at, "notes": "dev stack test"}
        headers = {"Authorization": f"Bearer {env['DEV_THERAPIST_TOKEN']}", "Content-Type": "application/json"}
        conn.request("POST", "/", json.dumps(body), headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def run_readme_curl(run: Run) -> tuple[int, dict[str, object]]:
    """The README's "Try it" block, run with bash as written (`source .dev/env`, then curl) from a directory whose
    `.dev` is this run's DEV_DIR; the status and the JSON body of the answer."""
    block = block_after((ROOT / "README.md").read_text(), "## Try it")
    workdir = run.site.dev_dir.parent
    with contextlib.suppress(FileExistsError):
        (workdir / ".dev").symlink_to(run.site.dev_dir, target_is_directory=True)
    done = subprocess.run(  # noqa: S603 - bash running the README's own block
        ["bash", "-euo", "pipefail", "-c", block],  # noqa: S607 - bash from PATH, as a reader runs it
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"the README's block failed ({done.returncode}):\n{done.stderr}\n{run.tail()}"
    head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
    return int(head.split()[1]), json.loads(body)


def invite(env: dict[str, str]) -> tuple[int, dict[str, str], list[str]]:
    """Invite a new native client of the dev therapist through sync_client, as the functions do it with the stack's
    Auth stand-in: the status, the answer, and the subjects of the messages to its address in DEV_MAIL_DIR."""
    client_id, address = str(uuid.uuid4()), f"dev-{uuid.uuid4().hex[:12]}@example.com"
    with psycopg.connect(env["PROJECT_A_DB_URL"], autocommit=True, connect_timeout=5) as db:
        db.execute(
            "insert into public.clients (id, full_name, email, therapist_id) values (%s, 'Dev Invite', %s, %s)",
            (client_id, address, env["DEV_THERAPIST_ID"]),
        )
    port = int(env["SYNC_CLIENT_URL"].rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {env['DEV_THERAPIST_TOKEN']}", "Content-Type": "application/json"}
        conn.request("POST", "/", json.dumps({"mode": "invite", "client_id": client_id}), headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
    finally:
        conn.close()
    messages = read_messages(Path(env["DEV_MAIL_DIR"]))
    return response.status, answer, [str(message["Subject"]) for message in messages if message["To"] == address]


def add_project_b_client(env: dict[str, str], *, webhook: bool = True) -> str:
    """A new client in Project B, written as the administrator: the database webhook should bring it to A (unless
    `webhook` is False: then its trigger does not fire, and only a backfill or reconcile copies it)."""
    client_id = str(uuid.uuid4())
    with psycopg.connect(env["PROJECT_B_DB_URL"], autocommit=True, connect_timeout=5) as conn:
        if not webhook:
            conn.execute("set session_replication_role = replica")
        conn.execute("insert into auth.users (id, email) values (%s, %s)", (client_id, f"dev-{client_id}@example.com"))
        conn.execute("insert into public.profiles (id, name, age) values (%s, 'Dev Stack', 30)", (client_id,))
    return client_id


def in_project_a(env: dict[str, str], client_id: str, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    with psycopg.connect(env["PROJECT_A_DB_URL"], autocommit=True, connect_timeout=5) as conn:
        while time.monotonic() < deadline:
            if conn.execute("select 1 from public.clients where id = %s", (client_id,)).fetchone():
                return True
            time.sleep(0.05)
    return False


@contextlib.contextmanager
def outage(env: dict[str, str], *, refuse: bool) -> Iterator[None]:
    """Project A unreachable for the functions: their connections (or, over the supabase backend, its API's)
    terminated over and over, and (`refuse`) new ones refused, until the block ends."""
    stopped = threading.Event()

    def terminate() -> None:
        with (
            contextlib.suppress(psycopg.Error),  # Postgres stopping with the stack
            psycopg.connect(env["PROJECT_B_DB_URL"], autocommit=True) as conn,
        ):
            while not stopped.is_set():
                conn.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity"
                    " where datname = 'project_a' and usename in ('client_sync', 'authenticator')"
                )
                stopped.wait(0.05)

    admin = psycopg.connect(env["PROJECT_B_DB_URL"], autocommit=True)
    if refuse:
        admin.execute("alter database project_a allow_connections false")
    thread = threading.Thread(target=terminate, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopped.set()
        thread.join(10)
        with contextlib.suppress(psycopg.Error):
            if refuse:
                admin.execute("alter database project_a allow_connections true")
            admin.close()


# The scenarios: what to do with a started run before it is stopped; the signal it gets is part of each.


def while_waiting_for_the_lock(run: Run) -> None:
    """Before anything starts: the watchdog of a killed `make dev` (here the test) still holds DEV_DIR."""
    run.wait_for("Waiting for the watchdog")
    run.stop(signal.SIGINT)


def right_after_start(run: Run) -> None:
    run.wait_for("[dev] make dev (pid")  # printed once its handlers are in place
    run.stop(signal.SIGTERM)


def ctrl_c_while_postgres_starts(run: Run) -> None:
    run.wait_for("Starting the embedded Postgres")
    run.stop(signal.SIGINT, group=True)  # a terminal's Ctrl-C reaches the whole foreground group


def while_migrating(run: Run) -> None:
    run.wait_for("Postgres is up")
    run.stop(signal.SIGTERM)


def while_services_start(run: Run) -> None:
    run.wait_for("Starting create_session")
    run.stop(signal.SIGHUP)


def after_ready_and_use(run: Run) -> None:
    run.wait_for("\nReady.")
    status, answer = run_readme_curl(run)
    assert (status, answer.get("client_synced")) == (201, True), f"{status} {answer}\n{run.tail()}"
    env = run.env()
    assert_env_file(run.site, env)
    assert book(env) == 201, run.tail()
    client_id = add_project_b_client(env)
    assert in_project_a(env, client_id), f"the webhook did not bring {client_id} to Project A:\n{run.tail()}"
    assert book(env, client_id) == 201, run.tail()
    assert database_logins(env) == ({"authenticator"} if run.site.backend == "supabase" else {"client_sync"})
    status, answer, subjects = invite(env)
    assert (status, answer.get("outcome"), subjects) == (200, "invited", ["You have been invited"]), run.tail()
    secrets = [value for key, value in env.items() if key.endswith(("_KEY", "_SECRET", "_TOKEN"))]
    assert not [secret for secret in secrets if secret in run.output()], "a key, secret or token in the stack's log"
    run.stop(signal.SIGTERM)


def assert_env_file(site: Site, env: dict[str, str]) -> None:
    """DEV_DIR/env: every key of either backend (Project B's Auth stand-in and its key, the mail folder), and with
    BACKEND=supabase each project's API and Project A's key too."""
    supabase = site.backend == "supabase"
    assert set(env) == ENV_KEYS | (SUPABASE_ENV_KEYS if supabase else set())
    assert env["DEV_BACKEND"] == site.backend
    assert env["PROJECT_B_AUTH_URL"] == f"http://127.0.0.1:{site.port_base + PROJECT_B_AUTH_OFFSET}/auth/v1"
    assert env["DEV_MAIL_DIR"] == str(site.dev_dir / "mail")
    if supabase:
        for project, offset in (("PROJECT_A", PROJECT_A_API_OFFSET), ("PROJECT_B", PROJECT_B_API_OFFSET)):
            assert env[f"{project}_URL"] == f"http://127.0.0.1:{site.port_base + offset}"
        assert env["PROJECT_A_SERVICE_ROLE_KEY"] != env["PROJECT_B_SERVICE_ROLE_KEY"]  # a JWT secret per project


def database_logins(env: dict[str, str]) -> set[str]:
    """Who the stack's clients log in to both projects as: the functions' login, or PostgREST's (the stand-ins)."""
    with psycopg.connect(env["PROJECT_A_DB_URL"], autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "select distinct usename from pg_stat_activity"
            " where datname in ('project_a', 'project_b') and usename in ('client_sync', 'authenticator')"
        ).fetchall()
    return {row[0] for row in rows}


def after_queue_and_schedule(run: Run) -> None:
    """The Lambda runtime over the stack's backend: the poller runs a sharded backfill's jobs from the queue, and
    the schedule's reconcile copies a client that no webhook announced (DEV_RECONCILE_SECONDS is 2 here)."""
    run.wait_for("\nReady.")
    env = run.env()
    port = int(env["SYNC_CLIENT_URL"].rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {env['DEV_SERVICE_ROLE_TOKEN']}", "Content-Type": "application/json"}
        conn.request("POST", "/", json.dumps({"mode": "backfill", "shards": 2}), headers)
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())) == (202, {"queued": 2}), run.tail()
    finally:
        conn.close()
    run.wait_for("[poller] batch of", timeout=30)
    unannounced = add_project_b_client(env, webhook=False)
    assert in_project_a(env, unannounced, timeout=30), f"no reconcile copied {unannounced}:\n{run.tail()}"
    run.wait_for("[schedule] reconcile: ", timeout=30)  # printed once its invocation returns
    assert ": 0 done" not in run.output() and "[schedule] reconcile failed" not in run.output(), run.tail()
    run.stop(signal.SIGTERM)


def hangup_during_outage(run: Run) -> None:
    """The terminal goes away (SIGHUP, then every write fails) while Project A is down and bookings retry."""
    run.wait_for("\nReady.")
    env = run.env()
    load = Load(run).start()
    try:
        with outage(env, refuse=False):
            time.sleep(2.0)
            run.stop(signal.SIGHUP)
            run.hang_up()
            time.sleep(0.5)
    finally:
        load.stop()


def after_refusal_and_load(run: Run) -> None:
    """The issue's sequence: Project A refuses connections for a moment, the stack runs on under load, SIGTERM."""
    run.wait_for("\nReady.")
    env = run.env()
    load = Load(run).start()
    try:
        with outage(env, refuse=True):  # until bookings fail for it
            deadline = time.monotonic() + 30
            while not sum(n for status, n in load.statuses.items() if status != 201) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert sum(n for status, n in load.statuses.items() if status != 201), f"{load.statuses}\n{run.tail()}"
        booked_before = load.statuses[201]
        time.sleep(LOAD_SECONDS)
        deadline = time.monotonic() + 30
        while load.statuses[201] == booked_before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert load.statuses[201] > booked_before, f"no booking after the outage: {load.statuses}\n{run.tail()}"
        assert load.webhook_ids and in_project_a(env, load.webhook_ids[-1]), run.tail()
        run.stop(signal.SIGTERM)
    finally:
        load.stop()


def after_postgres_restart(run: Run) -> None:
    """Postgres restarted under the stack (both projects down for a moment, then a new postmaster)."""
    run.wait_for("\nReady.")
    env = run.env()
    pgdata = run.site.dev_dir / "pgdata"
    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    subprocess.run(  # noqa: S603 - pgserver's pg_ctl; as pgserver's system user when root, as pgserver does
        [str(pg_ctl), "-D", str(pgdata), "-l", str(pgdata / "log"), "-w", "-m", "fast", "restart"],
        cwd=pgdata,
        env={**os.environ, MARKER: run.site.marker},
        user="pgserver" if os.geteuid() == 0 else None,
        check=True,
        capture_output=True,
        start_new_session=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    while book(env) != 201:
        assert time.monotonic() < deadline, f"no booking after the restart:\n{run.tail()}"
        time.sleep(0.2)
    run.stop(signal.SIGINT)


def signals_together_and_during_shutdown(run: Run) -> None:
    """Several stop signals pending at once (what left everything running before), then more while stopping."""
    run.wait_for("\nReady.")
    run.stop(signal.SIGTERM, signal.SIGHUP, signal.SIGINT, together=True)
    deadline = time.monotonic() + STOP_SECONDS
    while run.process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            run.process.send_signal(random.choice([signal.SIGTERM, signal.SIGINT, signal.SIGHUP]))
        time.sleep(0.03)


@dataclass(frozen=True)
class Scenario:
    name: str
    act: Callable[[Run], None]
    terminal: bool = False
    holds_lock: bool = False
    env: dict[str, str] = field(default_factory=dict)


SCENARIOS = [
    Scenario("sigint-while-a-killed-runs-watchdog-holds-the-lock", while_waiting_for_the_lock, holds_lock=True),
    Scenario("sigterm-right-after-start", right_after_start),
    Scenario("ctrl-c-while-postgres-starts", ctrl_c_while_postgres_starts),
    Scenario("sigterm-while-migrating", while_migrating),
    Scenario("sighup-while-services-start", while_services_start),
    Scenario("sigterm-after-ready-and-use", after_ready_and_use),
    Scenario("sigterm-after-queue-and-schedule", after_queue_and_schedule, env={"DEV_RECONCILE_SECONDS": "2"}),
    Scenario("sighup-hangup-during-outage", hangup_during_outage, terminal=True),
    Scenario("sigterm-after-refusal-and-load", after_refusal_and_load),
    Scenario("sigint-after-postgres-restart", after_postgres_restart),
    Scenario("signals-together-and-during-shutdown", signals_together_and_during_shutdown),
]


@pytest.fixture(scope="module", params=STACK_BACKENDS)
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """One per backend (pytest runs each backend's tests together, so that one is up at a time)."""
    # Not below pytest's basetemp: as root, pgserver runs Postgres as its own system user, and every pytest session
    # that starts (another one on this machine, too) makes /tmp/pytest-of-root private again, locking Postgres out
    # of its own files mid-run.
    dev_dir = Path(tempfile.mkdtemp(prefix=f"dev-stack-test-{request.param}-")) / "dev"
    here = Site(dev_dir=dev_dir, port_base=_free_port_base(), backend=request.param)
    yield here
    # Whatever a failed test left behind must not outlive it.
    for process in _marked(here.marker):
        with contextlib.suppress(psutil.Error):
            process.kill()
    postgres.stop(here.dev_dir / "pgdata")
    shutil.rmtree(dev_dir.parent, ignore_errors=True)


def assert_all_stopped(run: Run, exit_code: int = 0, also: tuple[psutil.Process, ...] = ()) -> float:
    """The run exits in time with `exit_code`, and nothing it started is left; the seconds it took to exit.

    After a SIGKILL (`exit_code` -9) the watchdog gets STOP_SECONDS to clean up; otherwise all must be gone on exit.
    """
    assert run.stopped_at is not None
    try:
        code = run.process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_SECONDS:g} s after the stop:\n{run.tail()}")
    took = time.monotonic() - run.stopped_at
    assert code == exit_code, f"exit code {code}, not {exit_code}:\n{run.tail()}"
    pgdata = run.site.dev_dir / "pgdata"
    deadline = time.monotonic() + (STOP_SECONDS if exit_code == -signal.SIGKILL else 0.0)
    while True:
        left = sorted({_describe(p) for p in [*run.before, *also, *_marked(run.site.marker)] if _alive(p)})
        taken = [port for port in run.site.ports if not _port_free(port)]
        postgres_left = postgres.postmaster(pgdata) is not None or bool(postgres.server_processes(pgdata))
        if not (left or taken or postgres_left) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if exit_code == -signal.SIGKILL:  # until the watchdog is done
        took = time.monotonic() - run.stopped_at
    assert not left, "left running:\n" + "\n".join(left) + f"\n{run.tail()}"
    assert not taken, f"ports still taken: {taken}\n{run.tail()}"
    assert not postgres_left, f"Postgres still runs on {pgdata}"
    return took


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
def test_stop_leaves_nothing_running(site: Site, tmp_path: Path, scenario: Scenario) -> None:
    with contextlib.ExitStack() as held:
        if scenario.holds_lock:
            site.dev_dir.mkdir(parents=True, exist_ok=True)
            lock = held.enter_context((site.dev_dir / "lock").open("w"))
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            killed = subprocess.Popen([sys.executable, "-c", "pass"])  # the pid of a gone `make dev`
            killed.wait()
            lock.write(f"{killed.pid}\n")
            lock.flush()
        run = Run(site, tmp_path / f"{scenario.name}.log", terminal=scenario.terminal, env=scenario.env)
        try:
            scenario.act(run)
        except BaseException:
            run.process.kill()
            raise
        took = assert_all_stopped(run)
    print(f"{scenario.name}: exited {took:.2f} s after the stop")  # shown with -s
    if scenario.holds_lock:
        assert "Starting the embedded Postgres" not in run.output(), run.tail()
    if not scenario.terminal:  # a hung-up terminal does not show the end
        assert "received; stopped" in run.output(), run.tail()


def test_sigkill_leaves_it_to_the_watchdog(site: Site, tmp_path: Path) -> None:
    """`make dev` killed with SIGKILL: its watchdog stops the services and Postgres."""
    run = Run(site, tmp_path / "sigkill.log")
    run.wait_for("\nReady.")
    run.stop(signal.SIGKILL)
    took = assert_all_stopped(run, exit_code=-signal.SIGKILL)
    print(f"sigkill: all stopped by the watchdog {took:.2f} s after the kill")
    assert "ended without stopping what it started" in run.output(), run.tail()


def test_start_clears_what_a_killed_run_left(site: Site, tmp_path: Path) -> None:
    """`make dev` and its watchdog both killed: the services die with their parent (parent-death signal), the
    postmaster stays; the next start stops it and starts afresh."""
    first = Run(site, tmp_path / "killed.log")
    first.wait_for("\nReady.")
    before = first.tree()
    stale = postgres.postmaster(site.dev_dir / "pgdata")
    assert stale is not None
    postgres_family = {stale, *stale.children(recursive=True)}
    watchdogs = [p for p in before if "devtools.watchdog" in _describe(p)]
    assert watchdogs, first.tail()
    for process in [*watchdogs, psutil.Process(first.process.pid)]:
        process.kill()
    assert first.process.wait(10) == -signal.SIGKILL
    services = [p for p in before if p not in postgres_family]
    deadline = time.monotonic() + STOP_SECONDS
    while any(_alive(p) for p in services) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p.pid for p in services if _alive(p)], "services outlived their killed parent"
    assert _alive(stale), "expected the postmaster to outlive a run killed with its watchdog"

    second = Run(site, tmp_path / "after.log")
    second.wait_for("\nReady.")
    assert f"Stopped the Postgres (pid {stale.pid})" in second.output(), second.tail()
    assert not _alive(stale)
    second.stop(signal.SIGINT)
    assert_all_stopped(second, also=tuple(before))


def test_start_removes_lock_files_naming_a_live_stranger(tmp_path: Path) -> None:
    """postmaster.pid and the socket's lock file of a postmaster that did not exit cleanly, naming a pid that now
    belongs to another process (or a zombie): Postgres would refuse to start; the start removes them."""
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    stranger = os.getpid()
    (pgdata / "postmaster.pid").write_text(f"{stranger}\n{pgdata}\n1\n5432\n{pgdata}\n\n  0 0\nready\n")
    (pgdata / ".s.PGSQL.5432.lock").write_text(f"{stranger}\n{pgdata}\n1\n5432\n{pgdata}\n")
    assert postgres.clear_stale(pgdata) is None
    assert not (pgdata / "postmaster.pid").exists()
    assert not (pgdata / ".s.PGSQL.5432.lock").exists()
    assert psutil.pid_exists(stranger)
