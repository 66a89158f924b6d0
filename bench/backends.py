"""create_session over each backend, the serverless way: `python -m bench.backends`.

One caller books, one request at a time (a Lambda instance serves one request at a time), on three
functions-framework servers: create_session over the direct backend (Postgres, as client_sync), over the client
backend (PostgREST's rpc over HTTP, against devtools' stand-in, each project's in a process of its own) and the
design document's algorithm (bench/baseline_design_doc.py). A proxy adds `--db-rtt-ms` to every round trip between
a server and what it calls, and counts them: each Postgres for the direct backend and the baseline, each PostgREST
stand-in for the client backend (the stand-in's own connection to its database is local to the project, as on
Supabase). Cases: a client already synced, and a first sync (a client only in Project B). Each round makes one
request of every case and implementation in a new random order, so that all share the machine's noise. Then the
cold import of each backend, in fresh interpreters.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import secrets
import sys
import time
from contextlib import ExitStack
from uuid import UUID, uuid4

from bench.backend_env import KEY_SECONDS, client_env, direct_env
from bench.cold_imports import measure_cold_imports
from bench.load import post, session_body
from bench.options import one_caller_arguments
from bench.report import Header, Report, run_bench
from bench.report.backends import CLIENT, DIRECT, FIRST_SYNC, SYNCED, backends_body
from bench.report.not_found import CaseResult
from bench.rtt_proxy import RttProxy
from bench.stack import (
    BASELINE,
    POSTGREST,
    SERVER_ENV,
    Implementation,
    add_clients,
    fresh_projects,
    function_server,
    log_dir,
    postgres_version,
    progress,
    vacuum_analyze,
)
from devtools.localdb import register_therapists
from devtools.tokens import sign_access_token

CREATE_SESSION_SOURCE = "functions/create_session/main.py"
IMPLEMENTATIONS = (
    Implementation(DIRECT, "create_session, direct backend", CREATE_SESSION_SOURCE),
    Implementation(CLIENT, "create_session, client backend", CREATE_SESSION_SOURCE),
    BASELINE,
)
CASES = ((SYNCED, "client already synced"), (FIRST_SYNC, "first sync (client only in Project B)"))
SYNCED_CLIENTS = 200
_SETTLE_SECONDS = 0.05  # lets the proxies forward the last bytes before their counters are read


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    return one_caller_arguments(
        "backends",
        __doc__,
        argv,
        requests=400,
        warmup=20,
        counted=10,
        import_runs=9,
        unit="requests per case and implementation",
    )


class _Bench:
    """The three servers, each behind delaying, counting proxies, and one keep-alive caller of each."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack) -> None:
        self.args = args
        self.stack = stack
        self.logs = log_dir(args.keep_logs, stack)
        self.projects = fresh_projects(stack)
        therapist = uuid4()
        register_therapists(self.projects.project_a_url, [therapist])
        # Each project its own JWT secret: Project A's signs the therapists' tokens and its service-role key.
        self.secret_a, self.secret_b = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
        self.token = sign_access_token(self.secret_a, therapist, expires_in=KEY_SECONDS)
        self.synced = add_clients(self.projects, SYNCED_CLIENTS, synced_to=therapist)
        per_case = args.warmup + args.counted + args.requests
        self.unsynced = {implementation.key: add_clients(self.projects, per_case) for implementation in IMPLEMENTATIONS}
        vacuum_analyze(self.projects.project_a_url, self.projects.project_b_url)
        self.proxies: dict[str, tuple[RttProxy, RttProxy]] = {}
        self.conns: dict[str, http.client.HTTPConnection] = {}
        for implementation in IMPLEMENTATIONS:
            env = self._client_env() if implementation.key == CLIENT else self._direct_env(implementation)
            server = stack.enter_context(function_server(implementation, env, self.logs, label="backends"))
            self.conns[implementation.key] = server.connection()
            stack.callback(self.conns[implementation.key].close)
        self.requests = [(case, implementation.key) for case, _ in CASES for implementation in IMPLEMENTATIONS]
        titles = dict(CASES)
        self.results = {(case, key): CaseResult(case, titles[case], 201, key) for case, key in self.requests}

    def _direct_env(self, implementation: Implementation) -> dict[str, str]:
        env, self.proxies[implementation.key] = direct_env(
            self.stack, self.projects, implementation, self.args.db_rtt_ms, self.secret_a
        )
        return env

    def _client_env(self) -> dict[str, str]:
        env, self.proxies[CLIENT] = client_env(
            self.stack, self.projects, self.args.db_rtt_ms, self.logs, self.secret_a, self.secret_b
        )
        return env

    def standin_times(self) -> dict[str, list[float]]:
        """Each stand-in's time per call, by function (milliseconds, from its log: every call of the run)."""
        times: dict[str, list[float]] = {}
        for project, name in (("project_a", "Project A"), ("project_b", "Project B")):
            for line in (self.logs / f"{POSTGREST.key}-{project}.log").read_text().splitlines():
                event = json.loads(line) if line.startswith("{") else {}
                if event.get("event") == "postgrest_request" and event.get("status") == 200:
                    times.setdefault(f"{name} {event['function']}", []).append(float(event["duration_ms"]))
        return times

    def run(self) -> list[CaseResult]:
        """The warm-up, then the requests whose round trips are counted, then the timed ones: each round every case
        of every implementation once, in a new random order."""
        warmup, counted = self.args.warmup, self.args.counted
        shuffler = random.Random(14)
        for n in range(warmup + counted + self.args.requests):
            order = list(self.requests)
            shuffler.shuffle(order)
            for case, key in order:
                client_id = self.synced[n % len(self.synced)] if case == SYNCED else self.unsynced[key][n]
                result = self.results[(case, key)] if n >= warmup else None
                self._request(key, result, client_id, counted=n < warmup + counted)
        return list(self.results.values())

    def _request(self, key: str, result: CaseResult | None, client_id: UUID, *, counted: bool) -> None:
        """One booking, recorded in `result` (none: the warm-up): its answer, and its round trips or its time."""
        proxies = self.proxies[key]
        if counted:
            time.sleep(_SETTLE_SECONDS)
            for proxy in proxies:
                proxy.reset()
        began = time.perf_counter()
        status, answer = post(self.conns[key], self.token, session_body(client_id))
        elapsed = time.perf_counter() - began
        if result is None:
            return
        if counted:
            time.sleep(_SETTLE_SECONDS)
            trips_a, trips_b = (proxy.snapshot().total for proxy in proxies)
            result.round_trips_a.append(trips_a)
            result.round_trips_b.append(trips_b)
        else:
            result.latencies.append(elapsed)
        answered = (status, answer[:200] if status != 201 else b"")
        result.bodies[answered] = result.bodies.get(answered, 0) + 1


def _settings(args: argparse.Namespace) -> str:
    return (
        f"functions-framework (gunicorn gthread), {SERVER_ENV['WORKERS']} worker with {SERVER_ENV['THREADS']} "
        f"threads, pool max {SERVER_ENV['DB_POOL_MAX_SIZE']} per project (Postgres connections, or the client "
        "backend's keep-alive HTTP connections), per implementation; 1 keep-alive caller, one request at a time, "
        f"every case and implementation in a random order each round; per case {args.warmup} warm-up requests, "
        f"{args.counted} with round trips counted, then {args.requests} timed; {args.db_rtt_ms:g} ms added per round "
        "trip to Postgres (direct backend, baseline) or to a PostgREST stand-in (client backend: "
        "devtools/postgrest.py, a process per project, its own database connections local); cold imports: "
        f"{args.import_runs} fresh interpreters per backend, alternating, after one not measured"
    )


def measure(args: argparse.Namespace) -> Report:
    with ExitStack() as stack:
        progress("starting Postgres, seeding the bench_ databases, starting the servers and stand-ins")
        bench = _Bench(args, stack)
        postgres = postgres_version(bench.projects.server_url)
        per_case = args.warmup + args.counted + args.requests
        progress(f"{len(bench.requests)} cases x {per_case} requests, 1 caller")
        results = bench.run()
        standin = bench.standin_times()
    progress(f"cold imports: {args.import_runs} runs per backend")
    imports = measure_cold_imports(args.import_runs)
    return Report(Header(postgres, _settings(args)), backends_body(results, imports, standin) + "\n")


def main(argv: list[str] | None = None) -> int:
    return run_bench("backends", _arguments, measure, argv)


if __name__ == "__main__":
    sys.exit(main())
