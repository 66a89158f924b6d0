"""The stack `make dev` runs, started step by step and shut down once (see devtools/dev.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping

from devtools import postgres
from devtools.config import ROOT, DevConfig, shown
from devtools.console import say
from devtools.devdir import DevDirLock, as_url, kept_secret, write_env_file
from devtools.errors import StackFailed
from devtools.processes import signal_group, spawn, stop_groups
from devtools.services import (
    QUEUE_POLLER,
    RECONCILE_SCHEDULE,
    WEBHOOK_RELAY,
    Running,
    Service,
    answers,
    aws_env,
    check_ports,
    create_retry_queue,
    dead_letter_queue_url,
    retry_queue_url,
    servers,
    start_service,
)
from devtools.stop_signals import StopSignals
from devtools.usage import DEV_THERAPIST_ID, print_usage

TOKEN_LIFETIME_SECONDS = 12 * 3600
SERVICE_ROLE_KEY_SECONDS = 10 * 365 * 24 * 3600  # as long-lived as a hosted project's; new on each start
# The settings that choose the functions' backend are the stack's to give, never inherited from the shell (one
# that sourced a `.dev/env` of the other backend, say).
INHERITED_SETTINGS_LEFT_OUT = frozenset(
    f"{prefix}_{name}"
    for prefix in ("PROJECT_A", "PROJECT_B")
    for name in ("DB_URL", "URL", "SERVICE_ROLE_KEY", "BACKEND", "AUTH_URL")
)
READY_TIMEOUT_SECONDS = 60.0
POSTGRES_START_TIMEOUT_SECONDS = 120.0
SERVICE_STOP_SECONDS = 10.0
WATCHDOG_STOP_SECONDS = 5.0
LOCK_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.5


class Watchdog:
    """The watchdog process (watchdog.py), fed through its stdin."""

    def __init__(self, lock_fd: int) -> None:
        self.process = spawn(
            [sys.executable, "-m", "devtools.watchdog"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            die_with_parent=False,  # it outlives this process: that is its purpose
            pass_fds=(lock_fd,),
        )

    def tell(self, line: str) -> None:
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(f"{line}\n".encode())
            self.process.stdin.flush()
        except (OSError, ValueError):
            pass  # it died; the serve loop reports that

    def finish(self) -> None:
        self.tell("done")
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(WATCHDOG_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            stop_groups([self.process], 1.0)


class Stack:
    def __init__(self, config: DevConfig, stop: StopSignals) -> None:
        self.config = config
        self.stop = stop
        self.lock = DevDirLock(config.lock_file)
        self.watchdog: Watchdog | None = None
        self.running: list[Running] = []
        self.postgres_helper: subprocess.Popen[bytes] | None = None
        self.embedded_postgres = False

    # The start: StopRequested (stop.check) or StackFailed end it, and `shutdown` follows.

    def start(self) -> None:
        config = self.config
        config.dev_dir.mkdir(parents=True, exist_ok=True)
        if not self.lock.acquire(LOCK_WAIT_SECONDS, say, self.stop.sleep):
            self.stop.check()  # the only reason acquire gives up early
            raise StackFailed(f"could not lock {config.lock_file}")
        check_ports(servers(config))
        self.stop.check()
        assert self.lock.fd is not None
        self.watchdog = Watchdog(self.lock.fd)
        server_url = self._start_postgres()
        self.stop.check()
        databases = self._prepare_databases(server_url)
        self.stop.check()
        secret = kept_secret(config.jwt_secret_file)
        common = {
            **{key: value for key, value in os.environ.items() if key not in INHERITED_SETTINGS_LEFT_OUT},
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
            "PROJECT_A_JWT_SECRET": secret,
            "PROJECT_B_WEBHOOK_SECRET": kept_secret(config.webhook_secret_file),
            "SYNC_RETRY_QUEUE_URL": retry_queue_url(config),
            "SYNC_DEAD_LETTER_QUEUE_URL": dead_letter_queue_url(config),
            "DEV_MAIL_DIR": str(config.mail_dir),
            **aws_env(config),
        }
        config.mail_dir.mkdir(exist_ok=True)
        logins = self._logins(databases, secret)
        for service in servers(config):
            self._start_service(service, common, logins)
        self._wait_until_serving()
        create_retry_queue(config)
        self.stop.check()
        for service in (WEBHOOK_RELAY, QUEUE_POLLER, RECONCILE_SCHEDULE):
            self._start_service(service, common, logins)
        self._write_env_file(common, databases, logins)
        self.stop.check()
        print_usage(config, servers(config))

    def _prepare_databases(self, server_url: str) -> dict[str, dict[str, str]]:
        """Migrate and seed both projects, install Project B's webhook; PROJECT_A_DB_URL and PROJECT_B_DB_URL of the
        functions' login (client_sync, as deployed), of the administrator (for the relay and for people) and, with
        the supabase backend, of PostgREST's (authenticator, for the stand-ins); PROJECT_B_DB_URL of GoTrue's
        (supabase_auth_admin, for the Auth stand-in)."""
        from devtools.localdb import auth_admin_url, authenticator_url, prepare_projects

        projects = prepare_projects(server_url, seed=True)
        say("Databases project_a and project_b migrated, sample data loaded")
        self.stop.check()
        webhook_url = next(service.url for service in servers(self.config) if service.name == "project_b_webhook")
        assert webhook_url is not None
        install_webhook(projects.project_b_url, webhook_url, kept_secret(self.config.webhook_secret_file))
        databases = {
            "client_sync": {
                "PROJECT_A_DB_URL": as_url(projects.project_a_functions_url),
                "PROJECT_B_DB_URL": as_url(projects.project_b_functions_url),
            },
            "admin": {
                "PROJECT_A_DB_URL": as_url(projects.project_a_url),
                "PROJECT_B_DB_URL": as_url(projects.project_b_url),
            },
            "supabase_auth_admin": {"PROJECT_B_DB_URL": as_url(auth_admin_url(server_url, projects.project_b_url))},
        }
        if self.config.backend == "supabase":
            databases["authenticator"] = {
                "PROJECT_A_DB_URL": as_url(authenticator_url(server_url, projects.project_a_url)),
                "PROJECT_B_DB_URL": as_url(authenticator_url(server_url, projects.project_b_url)),
            }
        return databases

    def _logins(self, databases: Mapping[str, Mapping[str, str]], project_a_secret: str) -> dict[str, dict[str, str]]:
        """The settings of each services.Login. Project B has a JWT secret of its own: its Auth stand-in verifies
        keys with it, and the functions reach that stand-in (PROJECT_B_AUTH_URL) with a service-role key signed with
        it, whatever the backend. With the supabase backend the functions also get each project's API URL and a
        service-role key signed with that project's JWT secret, and no database URL."""
        from devtools.tokens import client_backend_settings, sign_service_role_token

        project_b_secret = kept_secret(self.config.project_b_jwt_secret_file)
        services = {service.name: service for service in servers(self.config)}
        auth_url = services["project_b_auth"].url
        assert auth_url is not None
        logins = {
            "functions": dict(databases["client_sync"]),
            "admin": dict(databases["admin"]),
            "auth_project_b": {
                "GOTRUE_DB_DATABASE_URL": databases["supabase_auth_admin"]["PROJECT_B_DB_URL"],
                "GOTRUE_JWT_SECRET": project_b_secret,
            },
        }
        project_b_key = sign_service_role_token(project_b_secret, expires_in=SERVICE_ROLE_KEY_SECONDS)
        auth_settings = {"PROJECT_B_AUTH_URL": auth_url, "PROJECT_B_SERVICE_ROLE_KEY": project_b_key}
        if self.config.backend != "supabase":
            logins["functions"] |= auth_settings
            return logins
        jwt_secrets = {"project_a": project_a_secret, "project_b": project_b_secret}
        apis = {service.login: service for service in services.values() if service.name.endswith("_api")}
        logins["functions"] = {}
        for project, secret in jwt_secrets.items():
            prefix = project.upper()
            api = apis[f"postgrest_{project}"]
            assert api.url is not None
            logins[f"postgrest_{project}"] = {
                "PGRST_DB_URI": databases["authenticator"][f"{prefix}_DB_URL"],
                "PGRST_JWT_SECRET": secret,
            }
            logins["functions"] |= client_backend_settings(
                project, api.url, secret, expires_in=SERVICE_ROLE_KEY_SECONDS
            )
        logins["functions"]["PROJECT_B_AUTH_URL"] = auth_url  # and Project B's key, the one of its API
        return logins

    def _write_env_file(
        self,
        common: Mapping[str, str],
        databases: Mapping[str, Mapping[str, str]],
        logins: Mapping[str, Mapping[str, str]],
    ) -> None:
        from devtools.tokens import sign_access_token, sign_service_role_token

        secret = common["PROJECT_A_JWT_SECRET"]
        values = {
            **databases["admin"],
            "FUNCTIONS_PROJECT_A_DB_URL": databases["client_sync"]["PROJECT_A_DB_URL"],
            "FUNCTIONS_PROJECT_B_DB_URL": databases["client_sync"]["PROJECT_B_DB_URL"],
        }
        for service in servers(self.config):
            if service.url_variable and service.url:
                values[service.url_variable] = service.url
        for key in (
            "PROJECT_B_WEBHOOK_SECRET",
            "SYNC_RETRY_QUEUE_URL",
            "AWS_ENDPOINT_URL_SQS",
            "PROJECT_A_JWT_SECRET",
            "DEV_MAIL_DIR",
        ):
            values[key] = common[key]
        values["DEV_THERAPIST_ID"] = DEV_THERAPIST_ID
        values["DEV_THERAPIST_TOKEN"] = sign_access_token(secret, DEV_THERAPIST_ID, expires_in=TOKEN_LIFETIME_SECONDS)
        values["DEV_SERVICE_ROLE_TOKEN"] = sign_service_role_token(secret, expires_in=TOKEN_LIFETIME_SECONDS)
        # Which backend the functions use; `make sync` runs the command line over the same one.
        values["DEV_BACKEND"] = self.config.backend
        if self.config.backend == "supabase":
            for prefix in ("PROJECT_A", "PROJECT_B"):
                for key in (f"{prefix}_URL", f"{prefix}_SERVICE_ROLE_KEY"):
                    values[key] = logins["functions"][key]
        # The key the functions call Project B's Auth stand-in with, whatever the backend.
        values["PROJECT_B_SERVICE_ROLE_KEY"] = logins["functions"]["PROJECT_B_SERVICE_ROLE_KEY"]
        write_env_file(self.config.env_file, values)

    def _start_postgres(self) -> str:
        """The server URL: TEST_DATABASE_URL's (never stopped), or the embedded Postgres, started by a helper."""
        url = os.environ.get("TEST_DATABASE_URL")
        if url:
            say("Using the Postgres of TEST_DATABASE_URL (not stopped on exit)")
            return url
        pgdata = self.config.pgdata
        self.embedded_postgres = True
        assert self.watchdog is not None
        self.watchdog.tell(f"postgres {pgdata}")
        stale = postgres.clear_stale(pgdata)
        if stale is not None:
            say(
                f"Stopped the Postgres (pid {stale}) that an earlier, killed `make dev` left running on {shown(pgdata)}"
            )
        self.stop.check()
        say(f"Starting the embedded Postgres in {shown(pgdata)} ...")
        # Not stopped halfway, even on request: a cut initdb would leave a data directory no later run can use.
        helper = spawn([sys.executable, "-m", "devtools.postgres", str(pgdata)], cwd=ROOT, die_with_parent=False)
        self.postgres_helper = helper
        deadline = time.monotonic() + POSTGRES_START_TIMEOUT_SECONDS
        told = False
        while helper.poll() is None:
            if time.monotonic() > deadline:
                raise StackFailed(f"Postgres did not start in {POSTGRES_START_TIMEOUT_SECONDS:g} s")
            if self.stop.requested:
                if not told:
                    say("Stopping as soon as Postgres has started ...")
                    told = True
                time.sleep(0.05)
            else:
                self.stop.sleep(0.05)
        self.postgres_helper = None
        master = postgres.postmaster(pgdata)
        if helper.returncode != 0 or master is None:
            raise StackFailed(f"the embedded Postgres did not start (see above and {shown(pgdata / 'log')})")
        say(f"Postgres is up (pid {master.pid}); applying the migrations and the sample data ...")
        return postgres.server_url(pgdata)

    def _start_service(self, service: Service, env: Mapping[str, str], logins: Mapping[str, Mapping[str, str]]) -> None:
        running = start_service(service, env, logins)
        self.running.append(running)
        assert self.watchdog is not None
        self.watchdog.tell(f"group {running.process.pid}")

    def _wait_until_serving(self) -> None:
        waiting = [running for running in self.running if running.service.port is not None]
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while waiting:
            self.stop.check()
            for running in list(waiting):
                service = running.service
                assert service.port is not None
                if answers(service.port):
                    say(f"{service.name} is serving {service.url}")
                    waiting.remove(running)
                elif (code := running.process.poll()) is not None:
                    raise StackFailed(f"{service.name} exited with code {code} before answering on port {service.port}")
            if waiting and time.monotonic() > deadline:
                names = ", ".join(running.service.name for running in waiting)
                raise StackFailed(f"{names} did not answer in {READY_TIMEOUT_SECONDS:g} s")
            if waiting:
                self.stop.sleep(0.1)

    def serve(self) -> None:
        """Until a stop signal; StackFailed when a service or the watchdog exits."""
        while not self.stop.sleep(POLL_SECONDS):
            for running in self.running:
                code = running.process.poll()
                if code is not None:
                    raise StackFailed(f"{running.service.name} exited unexpectedly with code {code}")
            if self.watchdog is not None and self.watchdog.process.poll() is not None:
                raise StackFailed(f"the watchdog exited unexpectedly with code {self.watchdog.process.returncode}")

    # The shutdown: once, at the end, whatever happened before.

    def shutdown(self) -> None:
        """Stop whatever was started, newest first. Never raises; signals arriving meanwhile are only recorded."""
        if self.running or self.embedded_postgres:
            say("Shutting down ...")
        for step in (self._stop_services, self._stop_postgres, self._stop_watchdog):
            try:
                step()
            except Exception:  # a bug in one step must not leave the others undone
                say(f"ERROR while shutting down:\n{traceback.format_exc()}")
        self.lock.release()

    def _stop_services(self) -> None:
        if not self.running:
            return
        newest_first = list(reversed(self.running))
        killed = stop_groups([running.process for running in newest_first], SERVICE_STOP_SECONDS)
        for running in newest_first:
            if running.process in killed:
                say(f"{running.service.name} did not stop in {SERVICE_STOP_SECONDS:g} s; killed it")
        say("Stopped " + ", ".join(running.service.name for running in self.running))

    def _stop_postgres(self) -> None:
        helper = self.postgres_helper
        if helper is not None:  # the start failed while it ran: let it finish, as above
            try:
                helper.wait(POSTGRES_START_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                signal_group(helper.pid, signal.SIGKILL)
                helper.wait()
        if not self.embedded_postgres:
            return
        pgdata = self.config.pgdata
        pid = postgres.stop(pgdata)
        left = postgres.server_processes(pgdata)
        if left:
            say(f"ERROR: Postgres processes still running on {shown(pgdata)}: {[process.pid for process in left]}")
        elif pid is not None:
            say(f"Postgres stopped (pid {pid})")

    def _stop_watchdog(self) -> None:
        if self.watchdog is not None:
            self.watchdog.finish()


def install_webhook(project_b_url: str, webhook_url: str, webhook_secret: str) -> None:
    """Project B's database webhook, pointed at the local project_b_webhook."""
    import psycopg

    with psycopg.connect(project_b_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("select private.install_client_sync_webhook(%s, %s)", (webhook_url, webhook_secret))
    say(f"Project B's database webhook posts to {webhook_url}")
