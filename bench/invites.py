"""sync_client's invite, the serverless way: `python -m bench.invites`.

One caller invites, one request at a time, a new native client each time (with an email, a phone and notes), on two
functions-framework servers of sync_client: over the direct backend (Postgres, as client_sync) and over the client
backend (PostgREST's rpc, against devtools' stand-in). Project B's Auth is devtools' GoTrue stand-in
(devtools/auth_admin.py, a process of its own, its mail in a temporary folder). The baseline, in the same rounds: one
call of Auth's own invite (`POST /auth/v1/invite` of a new address), the least any invite through Project B's Auth
costs. A proxy adds `--db-rtt-ms` to every round trip between a server (or the baseline's caller) and what it calls,
and counts them: each Postgres or PostgREST stand-in, and the Auth stand-in. Each round makes one request of every
implementation in a new random order.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import secrets
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from uuid import UUID, uuid4

import psycopg

from bench.backend_env import KEY_SECONDS, client_env, direct_env
from bench.cold_imports import import_once
from bench.load import post
from bench.options import one_caller_arguments
from bench.report import Header, Report, run_bench
from bench.report.invites import BASELINE_KEY, InviteResult, invites_body
from bench.rtt_proxy import RttProxy
from bench.stack import (
    SERVER_ENV,
    Implementation,
    auth_server,
    fresh_projects,
    function_server,
    http_rtt_proxy,
    log_dir,
    postgres_version,
    progress,
    vacuum_analyze,
)
from devtools.localdb import auth_admin_url, register_therapists
from devtools.tokens import sign_access_token, sign_service_role_token

SOURCE = "functions/sync_client/main.py"
DIRECT, CLIENT = "direct", "client"
IMPLEMENTATIONS = (
    Implementation(DIRECT, "invite, direct backend", SOURCE, target="sync_client"),
    Implementation(CLIENT, "invite, client backend", SOURCE, target="sync_client"),
)
TITLES = {DIRECT: IMPLEMENTATIONS[0].title, CLIENT: IMPLEMENTATIONS[1].title, BASELINE_KEY: "Auth's invite alone"}
# What the invite imports on first use, and only then (shared/wiring.py project_b_auth).
AUTH_MODULES = ("shared.stores.auth_admin", "supabase_auth")
_SETTLE_SECONDS = 0.05


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    return one_caller_arguments(
        "invites", __doc__, argv, requests=200, warmup=10, counted=5, import_runs=9, unit="invites per implementation"
    )


class _Bench:
    """The two servers and the Auth stand-in, each behind delaying, counting proxies, and one keep-alive caller."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack) -> None:
        self.args, self.stack = args, stack
        self.logs = log_dir(args.keep_logs, stack)
        self.projects = fresh_projects(stack)
        therapist = uuid4()
        register_therapists(self.projects.project_a_url, [therapist])
        self.secret_a, self.secret_b = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
        self.token = sign_access_token(self.secret_a, therapist, expires_in=KEY_SECONDS)
        self.service_b = sign_service_role_token(self.secret_b, expires_in=KEY_SECONDS)
        per_case = args.warmup + args.counted + args.requests
        self.clients = {key: self._native_clients(therapist, per_case) for key in (DIRECT, CLIENT)}
        vacuum_analyze(self.projects.project_a_url, self.projects.project_b_url)
        mail = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-mail-")))
        login = auth_admin_url(self.projects.server_url, self.projects.project_b_url)
        self.auth_url = stack.enter_context(auth_server(login, self.secret_b, mail, self.logs))
        self.proxies: dict[str, list[RttProxy]] = {}
        self.conns: dict[str, http.client.HTTPConnection] = {}
        for implementation in IMPLEMENTATIONS:
            env = self._client_env() if implementation.key == CLIENT else self._direct_env(implementation)
            env |= self._auth_env(implementation.key)
            server = stack.enter_context(function_server(implementation, env, self.logs, label="invites"))
            self.conns[implementation.key] = server.connection()
            stack.callback(self.conns[implementation.key].close)
        proxy, url = http_rtt_proxy(stack, self.auth_url, args.db_rtt_ms)
        self.proxies[BASELINE_KEY] = [proxy]
        port = int(url.rsplit(":", 1)[1])
        self.conns[BASELINE_KEY] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        stack.callback(self.conns[BASELINE_KEY].close)
        self.results = {key: InviteResult(key, TITLES[key]) for key in TITLES}

    def _native_clients(self, therapist: UUID, count: int) -> list[UUID]:
        ids = [uuid4() for _ in range(count)]
        with psycopg.connect(self.projects.project_a_url, autocommit=True) as conn:
            conn.execute(
                "insert into public.clients (id, full_name, email, phone, notes, therapist_id)"
                " select id, 'Bench Client', 'bench-' || id || '@example.test', '+44 20 0000 0000', 'clinical', %s"
                " from unnest(%s::uuid[]) as id",
                (therapist, ids),
            )
        return ids

    def _direct_env(self, implementation: Implementation) -> dict[str, str]:
        env, proxies = direct_env(self.stack, self.projects, implementation, self.args.db_rtt_ms, self.secret_a)
        self.proxies[implementation.key] = list(proxies)
        return env

    def _client_env(self) -> dict[str, str]:
        env, proxies = client_env(
            self.stack, self.projects, self.args.db_rtt_ms, self.logs, self.secret_a, self.secret_b
        )
        self.proxies[CLIENT] = list(proxies)
        return env

    def _auth_env(self, key: str) -> dict[str, str]:
        proxy, url = http_rtt_proxy(self.stack, self.auth_url, self.args.db_rtt_ms)
        self.proxies[key].append(proxy)
        return {"PROJECT_B_AUTH_URL": f"{url}/auth/v1", "PROJECT_B_SERVICE_ROLE_KEY": self.service_b}

    def run(self) -> list[InviteResult]:
        warmup, counted = self.args.warmup, self.args.counted
        shuffler = random.Random(15)
        for n in range(warmup + counted + self.args.requests):
            order = list(TITLES)
            shuffler.shuffle(order)
            for key in order:
                result = self.results[key] if n >= warmup else None
                self._request(key, n, result, counted=warmup <= n < warmup + counted)
        return list(self.results.values())

    def _send(self, key: str, n: int) -> tuple[int, bytes]:
        if key == BASELINE_KEY:
            conn = self.conns[key]
            headers = {
                "apikey": self.service_b,
                "Authorization": f"Bearer {self.service_b}",
                "Content-Type": "application/json",
                "X-Supabase-Api-Version": "2024-01-01",
            }
            conn.request("POST", "/auth/v1/invite", json.dumps({"email": f"baseline-{uuid4()}@example.test"}), headers)
            response = conn.getresponse()
            return response.status, response.read()
        body = json.dumps({"mode": "invite", "client_id": str(self.clients[key][n])}).encode()
        return post(self.conns[key], self.token, body)

    def _request(self, key: str, n: int, result: InviteResult | None, *, counted: bool) -> None:
        if counted:
            time.sleep(_SETTLE_SECONDS)
            for proxy in self.proxies[key]:
                proxy.reset()
        began = time.perf_counter()
        status, answer = self._send(key, n)
        elapsed = time.perf_counter() - began
        if result is None:
            return
        if counted:
            time.sleep(_SETTLE_SECONDS)
            result.round_trips.append([proxy.snapshot().total for proxy in self.proxies[key]])
        else:
            result.latencies.append(elapsed)
        ok = status == 200 and (key == BASELINE_KEY or json.loads(answer).get("outcome") == "invited")
        result.unexpected += 0 if ok else 1


def _settings(args: argparse.Namespace) -> str:
    return (
        f"functions-framework (gunicorn gthread), {SERVER_ENV['WORKERS']} worker with {SERVER_ENV['THREADS']} "
        "threads, per implementation; 1 keep-alive caller, one request at a time, every implementation in a random "
        f"order each round; per implementation {args.warmup} warm-up invites, {args.counted} with round trips "
        f"counted, then {args.requests} timed, each of a new client; {args.db_rtt_ms:g} ms added per round trip to "
        "Postgres (direct backend), to a PostgREST stand-in (client backend) and to the Auth stand-in "
        "(devtools/auth_admin.py, a process of its own)"
    )


def measure(args: argparse.Namespace) -> Report:
    with ExitStack() as stack:
        progress("starting Postgres, the bench_ databases, the servers and stand-ins")
        bench = _Bench(args, stack)
        postgres = postgres_version(bench.projects.server_url)
        progress(f"{len(TITLES)} implementations x {args.warmup + args.counted + args.requests} invites, 1 caller")
        results = bench.run()
    progress(f"cold import of the Auth admin client: {args.import_runs} runs")
    import_once(AUTH_MODULES)  # not measured: the files in the page cache, their bytecode compiled
    imports = [import_once(AUTH_MODULES) for _ in range(args.import_runs)]
    return Report(Header(postgres, _settings(args)), invites_body(results, AUTH_MODULES, imports) + "\n")


def main(argv: list[str] | None = None) -> int:
    return run_bench("invites", _arguments, measure, argv)


if __name__ == "__main__":
    sys.exit(main())
