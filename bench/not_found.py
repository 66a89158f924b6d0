"""Whether create_session's answer or its time tells a therapist that an id is a client: `python -m bench.not_found`.

One caller books, one request at a time, ids of each case a therapist can name: an unknown id, another therapist's
client (synced, archived, or Project A's own), a client archived before anyone claimed it, and for reference the
caller's own archived and synced clients; a second caller asks sync_client for the same 404 cases. Every database
connection of the function servers goes through a proxy that adds `--db-rtt-ms` to each round trip and counts
them. Each round makes one request of every case, in a new random order, so that all see the same server and
database state; each request names an id of its own.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import secrets
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from uuid import UUID, uuid4

import psycopg
from psycopg.types.json import Jsonb

from bench.load import post, session_body
from bench.options import one_caller_arguments
from bench.report import Header, Report, run_bench
from bench.report.not_found import UNKNOWN, CaseResult, not_found_table, not_found_verdict
from bench.rtt_proxy import RttProxy
from bench.stack import (
    CREATE_SESSION,
    SERVER_ENV,
    FunctionServer,
    Implementation,
    add_clients,
    fresh_projects,
    function_server,
    functions_env,
    log_dir,
    postgres_version,
    progress,
    vacuum_analyze,
)
from devtools.localdb import LocalProjects, register_therapists
from devtools.tokens import sign_access_token

SYNC_CLIENT = Implementation("sync_client", "sync_client", "functions/sync_client/main.py", target="sync_client")
_SETTLE_SECONDS = 0.05  # lets the proxies forward the last bytes before their counters are read


@dataclass(frozen=True)
class _Case:
    key: str
    title: str
    expected_status: int


CASES = (
    _Case(UNKNOWN, "unknown id (in neither project)", 404),
    _Case("theirs_synced", "another therapist's client, in Project B", 404),
    _Case("theirs_archived", "another therapist's client, deleted in Project B (archived)", 404),
    _Case("unclaimed_archived", "a client nobody claimed, deleted in Project B (archived)", 404),
    _Case("theirs_native", "another therapist's client created in Project A", 404),
    _Case("mine_archived", "reference: your own client, deleted in Project B (archived)", 409),
    _Case("mine_synced", "reference: your own client, in Project B", 201),
)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    return one_caller_arguments("not_found", __doc__, argv, requests=500, warmup=10, counted=20)


class _Seeds:
    """Ids of each case, made in both projects as the sync leaves them."""

    def __init__(self, projects: LocalProjects, therapist: UUID, other: UUID) -> None:
        self.projects = projects
        self.therapist = therapist
        self.other = other

    def ids(self, key: str, count: int) -> list[UUID]:
        makers: dict[str, Callable[[int], list[UUID]]] = {
            UNKNOWN: lambda n: [uuid4() for _ in range(n)],
            "theirs_synced": lambda n: add_clients(self.projects, n, synced_to=self.other),
            "theirs_archived": lambda n: self._deleted(add_clients(self.projects, n, synced_to=self.other)),
            "unclaimed_archived": lambda n: self._deleted(
                self._unclaimed(add_clients(self.projects, n, synced_to=self.other))
            ),
            "theirs_native": self._native,
            "mine_archived": lambda n: self._deleted(add_clients(self.projects, n, synced_to=self.therapist)),
            "mine_synced": lambda n: add_clients(self.projects, n, synced_to=self.therapist),
        }
        return makers[key](count)

    def _unclaimed(self, ids: list[UUID]) -> list[UUID]:
        with psycopg.connect(self.projects.project_a_url) as conn:
            conn.execute("update public.clients set therapist_id = null where id = any(%s)", (ids,))
        return ids

    def _deleted(self, ids: list[UUID]) -> list[UUID]:
        """Profiles deleted in Project B (the deletion recorded), and archived in Project A as the sync does."""
        with psycopg.connect(self.projects.project_b_url) as conn:
            conn.execute("delete from public.profiles where id = any(%s)", (ids,))
            rows = conn.execute(
                "select id::text, deleted_at from private.profile_deletions where id = any(%s)", (ids,)
            ).fetchall()
        absences = [{"id": client_id, "deleted_at": deleted_at.isoformat()} for client_id, deleted_at in rows]
        with psycopg.connect(self.projects.project_a_url) as conn:
            conn.execute("select count(*) from public.archive_synced_clients(%s)", (Jsonb(absences),))
        return ids

    def _native(self, count: int) -> list[UUID]:
        with psycopg.connect(self.projects.project_a_url) as conn:
            rows = conn.execute(
                "insert into public.clients (full_name, therapist_id)"
                " select 'Native ' || n, %s from generate_series(1, %s) n returning id",
                (self.other, count),
            ).fetchall()
        return [row[0] for row in rows]


class _Bench:
    """create_session and sync_client servers whose database connections go through delaying, counting proxies,
    and one caller of each."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack) -> None:
        self.args = args
        self.projects = fresh_projects(stack)
        therapist, other = uuid4(), uuid4()
        register_therapists(self.projects.project_a_url, [therapist, other])
        secret = secrets.token_urlsafe(48)
        self.token = sign_access_token(secret, therapist, expires_in=3600)
        seeds = _Seeds(self.projects, therapist, other)
        per_case = args.warmup + args.counted + args.requests
        self.ids = {case.key: seeds.ids(case.key, per_case) for case in CASES}
        vacuum_analyze(self.projects.project_a_url, self.projects.project_b_url)
        delay = args.db_rtt_ms / 1000
        self.proxies = [
            stack.enter_context(RttProxy(url, delay_seconds=delay))
            for url in (self.projects.project_a_functions_url, self.projects.project_b_functions_url)
        ]
        env = {
            **functions_env(self.projects),
            "PROJECT_A_JWT_SECRET": secret,
            "PROJECT_A_DB_URL": self.proxies[0].url(),
            "PROJECT_B_DB_URL": self.proxies[1].url(),
        }
        logs = log_dir(args.keep_logs, stack)
        self.conns: dict[str, http.client.HTTPConnection] = {}
        for implementation in (CREATE_SESSION, SYNC_CLIENT):
            server: FunctionServer = stack.enter_context(function_server(implementation, env, logs, label="not_found"))
            self.conns[implementation.key] = server.connection()
            stack.callback(self.conns[implementation.key].close)
        self.requests = [(CREATE_SESSION.key, case) for case in CASES] + [
            (SYNC_CLIENT.key, case) for case in CASES if case.expected_status == 404
        ]
        self.results = {
            (function, case.key): CaseResult(case.key, case.title, case.expected_status, function)
            for function, case in self.requests
        }

    def run(self) -> list[CaseResult]:
        """The warm-up, then the requests whose round trips are counted, then the timed ones: each round every case
        of both functions once, in a new random order, so that no case always follows the same one (the first
        request after the other function's is slower)."""
        warmup, counted = self.args.warmup, self.args.counted
        shuffler = random.Random(13)
        for n in range(warmup + counted + self.args.requests):
            order = list(self.requests)
            shuffler.shuffle(order)
            for function, case in order:
                result = self.results[(function, case.key)] if n >= warmup else None
                self._request(function, result, self.ids[case.key][n], counted=n < warmup + counted)
        return list(self.results.values())

    def _request(self, function: str, result: CaseResult | None, client_id: UUID, *, counted: bool) -> None:
        """One request, recorded in `result` (none: the warm-up): its answer, and its round trips or its time."""
        body = session_body(client_id) if function == CREATE_SESSION.key else _sync_body(client_id)
        if counted:
            time.sleep(_SETTLE_SECONDS)
            for proxy in self.proxies:
                proxy.reset()
        began = time.perf_counter()
        status, answer = post(self.conns[function], self.token, body)
        elapsed = time.perf_counter() - began
        if result is None:
            return
        if counted:
            time.sleep(_SETTLE_SECONDS)
            trips_a, trips_b = (proxy.snapshot().total for proxy in self.proxies)
            result.round_trips_a.append(trips_a)
            result.round_trips_b.append(trips_b)
        else:
            result.latencies.append(elapsed)
        key = (status, answer if status != 201 else b"")
        result.bodies[key] = result.bodies.get(key, 0) + 1


def _sync_body(client_id: UUID) -> bytes:
    return json.dumps({"client_id": str(client_id)}).encode()


def _settings(args: argparse.Namespace) -> str:
    return (
        f"functions-framework (gunicorn gthread), {SERVER_ENV['WORKERS']} worker with {SERVER_ENV['THREADS']} "
        f"threads, DB pool max {SERVER_ENV['DB_POOL_MAX_SIZE']} per project, per function; 1 keep-alive caller per "
        f"function, one request at a time, create_session's {len(CASES)} cases and sync_client's 404 ones in a "
        f"random order each round, an id of its own per request; per case {args.warmup} warm-up requests, "
        f"{args.counted} with round trips counted, then {args.requests} timed; {args.db_rtt_ms:g} ms added per "
        "database round trip"
    )


def measure(args: argparse.Namespace) -> Report:
    with ExitStack() as stack:
        progress("starting Postgres and seeding the bench_ databases")
        bench = _Bench(args, stack)
        postgres = postgres_version(bench.projects.server_url)
        progress(f"{len(bench.requests)} cases x {args.warmup + args.counted + args.requests} requests, 1 caller")
        results = bench.run()
    body = not_found_table(results) + "\n\n" + not_found_verdict(results) + "\n"
    return Report(Header(postgres, _settings(args)), body)


def main(argv: list[str] | None = None) -> int:
    return run_bench("not_found", _arguments, measure, argv)


if __name__ == "__main__":
    sys.exit(main())
