"""Benchmark create_session against the design document's algorithm: `python -m bench.create_session`.

Both run as real functions-framework HTTP servers over the same fresh databases. Measured:
round trips per request to each project (through counting proxies), then requests per second and
latency with N concurrent keep-alive callers, for a client already in Project A and for a first sync.
At 1 caller, beside them in the same runs of a synced client: the floor (bench/floor_function.py: the request,
the token and one round trip to Project A, nothing booked), and the booking's SQL timed (bench/booking_sql.py):
what create_session's p50 cannot go below, against the design document's (issue 17: at most 0.55x at 1 caller).
"""

from __future__ import annotations

import argparse
import math
import secrets
import statistics
import sys
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from bench.booking_sql import BookingSql
from bench.load import ClientIds, LoadResult, run_load
from bench.report import Header, Report, run_bench
from bench.report.create_session import Floor, Measurement, create_session_table, create_session_verdict, floor_line
from bench.roundtrips import RoundTripReport, measure_round_trips
from bench.stack import (
    BASELINE,
    CREATE_SESSION,
    FLOOR,
    SERVER_ENV,
    FunctionServer,
    Implementation,
    add_clients,
    database_urls,
    fresh_projects,
    function_server,
    functions_env,
    log_dir,
    postgres_version,
    progress,
    rtt_proxied,
)
from devtools.localdb import LocalProjects, register_therapists
from devtools.tokens import sign_access_token

IMPLEMENTATIONS = (BASELINE, CREATE_SESSION)
SYNCED_CLIENTS = 500
ROUND_TRIP_REPEATS = 5
BOOKING_SQL_SAMPLES = 300


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.create_session", description=__doc__)
    parser.add_argument("--callers", type=int, default=16, help="concurrent HTTP callers (default 16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up time per run (default 2)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="runs per case and implementation, alternating their order (default 2)"
    )
    parser.add_argument(
        "--db-rtt-ms",
        type=float,
        default=0.0,
        help="route the load runs through proxies adding this round trip time to every database round trip "
        "(default 0: direct connections)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write the results into bench/README.md")
    parser.add_argument("--keep-logs", type=Path, help="keep the servers' logs in this directory")
    args = parser.parse_args(argv)
    if args.callers < 1 or not 0 < args.seconds <= 120 or not 0 <= args.warmup <= 60 or not 1 <= args.rounds <= 5:
        parser.error("callers >= 1, 0 < seconds <= 120, 0 <= warmup <= 60 and 1 <= rounds <= 5")
    if not 0 <= args.db_rtt_ms <= 100:
        parser.error("0 <= db-rtt-ms <= 100")
    return args


class _Bench:
    """The stack of one benchmark run; everything it starts is registered on `stack`."""

    def __init__(self, args: argparse.Namespace, stack: ExitStack) -> None:
        self.args = args
        self.stack = stack
        self.log_dir = log_dir(args.keep_logs, stack)
        self.projects: LocalProjects = fresh_projects(stack)
        self.therapist = uuid4()
        register_therapists(self.projects.project_a_url, [self.therapist])
        secret = secrets.token_urlsafe(48)
        self.token = sign_access_token(secret, self.therapist, expires_in=3600)
        self.env = {**functions_env(self.projects), "PROJECT_A_JWT_SECRET": secret}
        self.synced = add_clients(self.projects, SYNCED_CLIENTS, synced_to=self.therapist)

    def round_trips(self, implementation: Implementation) -> RoundTripReport:
        unsynced = add_clients(self.projects, 2 + ROUND_TRIP_REPEATS)
        return measure_round_trips(
            implementation,
            self.projects,
            self.env,
            self.token,
            self.log_dir,
            synced=self.synced,
            unsynced=unsynced,
            repeats=ROUND_TRIP_REPEATS,
        )

    def load_server(self, implementation: Implementation) -> FunctionServer:
        """A server for the load runs, direct to the databases or through proxies adding --db-rtt-ms."""
        url_a, url_b = rtt_proxied(self.stack, database_urls(self.projects, implementation), self.args.db_rtt_ms)
        env = {**self.env, "PROJECT_A_DB_URL": url_a, "PROJECT_B_DB_URL": url_b}
        return self.stack.enter_context(function_server(implementation, env, self.log_dir, label="load"))

    def load(self, server: FunctionServer, client_ids: ClientIds) -> LoadResult:
        return run_load(
            server.connection,
            self.token,
            client_ids,
            callers=self.args.callers,
            seconds=self.args.seconds,
            warmup=self.args.warmup,
        )

    def first_sync_clients(self, synced_rate: float) -> list[UUID]:
        """Enough new clients for a run as fast as the synced one (a first sync is never faster), plus margin."""
        needed = synced_rate * (self.args.seconds + self.args.warmup) * 1.3 + 100 * self.args.callers
        return add_clients(self.projects, min(200_000, math.ceil(needed)))


def _booking_sql_ms(bench: _Bench) -> float:
    """The median time of the booking's statement for a synced client, at distinct times, less a `select 1`, on one
    connection through the same added round trip time as the load runs: the SQL as the server runs it between
    round trips (after each wait, not in a tight local loop)."""
    minutes = iter(range(10**6))
    start = datetime(2035, 1, 1, tzinfo=UTC)
    (url,) = rtt_proxied(bench.stack, [bench.projects.project_a_url], bench.args.db_rtt_ms)
    booking = BookingSql(url, bench.therapist, bench.synced[0], lambda: start + timedelta(minutes=next(minutes)))
    try:
        return statistics.median(booking.server_ms() for _ in range(BOOKING_SQL_SAMPLES))
    finally:
        booking.close()


def _measure(args: argparse.Namespace) -> tuple[dict[str, Measurement], Floor | None, str]:
    with ExitStack() as stack:
        progress("starting Postgres and seeding the bench_ databases")
        bench = _Bench(args, stack)
        postgres = postgres_version(bench.projects.server_url)
        round_trips = {}
        for implementation in IMPLEMENTATIONS:
            progress(f"counting round trips: {implementation.title}")
            round_trips[implementation.key] = bench.round_trips(implementation)
        one_caller = args.callers == 1
        served = (*IMPLEMENTATIONS, FLOOR) if one_caller else IMPLEMENTATIONS
        servers = {implementation.key: bench.load_server(implementation) for implementation in served}
        runs: dict[tuple[str, str], list[LoadResult]] = {}
        for case in ("synced", "first_sync"):
            for round_number in range(args.rounds):
                implementations = (*IMPLEMENTATIONS, FLOOR) if one_caller and case == "synced" else IMPLEMENTATIONS
                order = implementations if round_number % 2 == 0 else implementations[::-1]
                for implementation in order:
                    progress(f"{args.callers} callers, {case}, round {round_number + 1}: {implementation.title}")
                    if case == "synced":
                        ids = ClientIds(bench.synced, cycle=True)
                    else:
                        rate = LoadResult.merged(runs[(implementation.key, "synced")]).per_second
                        ids = ClientIds(bench.first_sync_clients(rate), cycle=False)
                    result = bench.load(servers[implementation.key], ids)
                    runs.setdefault((implementation.key, case), []).append(result)
        floor = None
        if one_caller:
            progress(f"the booking's SQL, {BOOKING_SQL_SAMPLES} statements")
            floor = Floor(LoadResult.merged(runs[(FLOOR.key, "synced")]), _booking_sql_ms(bench))
    measured = {
        key: Measurement(
            round_trips[key], LoadResult.merged(runs[(key, "synced")]), LoadResult.merged(runs[(key, "first_sync")])
        )
        for key in (BASELINE.key, CREATE_SESSION.key)
    }
    return measured, floor, postgres


def _settings(args: argparse.Namespace) -> str:
    network = f"{args.db_rtt_ms:g} ms added per database round trip" if args.db_rtt_ms else "direct connections"
    return (
        f"functions-framework (gunicorn gthread), {SERVER_ENV['WORKERS']} worker with "
        f"{SERVER_ENV['THREADS']} threads, DB pool max {SERVER_ENV['DB_POOL_MAX_SIZE']} per project, same for both;"
        f" {args.callers} keep-alive callers; per case {args.rounds} alternating runs of {args.warmup:g} s warm-up "
        f"+ {args.seconds:g} s measured; load runs over {network}"
    )


def measure(args: argparse.Namespace) -> Report:
    measured, floor, postgres = _measure(args)
    baseline, ours = measured[BASELINE.key], measured[CREATE_SESSION.key]
    table = create_session_table(baseline, ours, args.callers) + "\n\n"
    # Issue 5's targets (round trips, throughput) are for many callers; one caller is issue 17's case.
    verdict = create_session_verdict(baseline, ours) if floor is None else floor_line(baseline, ours, floor)
    body = table + verdict + "\n"
    command = f"bench.create_session --callers 1 --db-rtt-ms {args.db_rtt_ms:g}" if floor is not None else ""
    return Report(Header(postgres, _settings(args), command=command), body)


def main(argv: list[str] | None = None) -> int:
    # One caller is the serverless case (issue 17's target, with the floor): a section of its own.
    name = "create_session_one_caller" if _arguments(argv).callers == 1 else "create_session"
    return run_bench(name, _arguments, measure, argv)


if __name__ == "__main__":
    sys.exit(main())
