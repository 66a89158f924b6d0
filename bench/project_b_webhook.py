"""Benchmark project_b_webhook: `python -m bench.project_b_webhook`.

On one fresh stack (Postgres, fresh bench_ databases, the webhook and create_session as real functions-framework
HTTP servers):

1. events per second with N concurrent keep-alive senders POSTing real webhook payloads: UPDATE events for
   clients whose profile changed, then INSERT events for new clients; every event writes in Project A;
2. the time from a write in Project B to the row in Project A through the real trigger, the local pg_net
   stand-in, WebhookRelay and the server (a new client, a renamed profile, a changed email, in turn);
3. side by side: a booking (create_session) for a client only in Project B (on-demand sync, what happens
   without the webhook) and for a client the webhook already synced.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
from collections import deque
from contextlib import ExitStack
from pathlib import Path
from uuid import uuid4

from bench.load import LoadResult
from bench.report import Header, Report, run_bench
from bench.report.webhook import WebhookMeasurement, webhook_table, webhook_verdict
from bench.stack import (
    CREATE_SESSION,
    PROJECT_B_WEBHOOK,
    SERVER_ENV,
    FunctionServer,
    add_clients,
    fresh_projects,
    function_server,
    functions_env,
    log_dir,
    postgres_version,
    progress,
    vacuum_analyze,
)
from bench.webhook_bookings import measure_bookings
from bench.webhook_events import insert_events, run_senders, update_events
from bench.webhook_propagation import live_webhook, measure_propagation, sync_burst
from devtools.localdb import LocalProjects, register_therapists
from devtools.tokens import sign_access_token

# Prepared UPDATE events per second of the run: more than 8 senders get through on this kind of machine; the
# INSERT events are then sized from the measured UPDATE rate. A run that uses them all up says so.
UPDATE_EVENTS_PER_SECOND = 2000
BOOKING_WARMUP = 10
PROPAGATION_BUDGET_SECONDS = 120.0
BURST_DEADLINE_SECONDS = 30.0
POLL_SECONDS = 0.001
PAUSE_SECONDS = 0.01


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.project_b_webhook", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--senders", type=int, default=8, help="concurrent webhook senders (default 8)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per event type (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up time per event type (default 2)")
    parser.add_argument("--writes", type=int, default=200, help="timed writes through the trigger (default 200)")
    parser.add_argument("--deadline", type=float, default=5.0, help="seconds a write may take to arrive (default 5)")
    parser.add_argument("--bookings", type=int, default=200, help="timed bookings per case (default 200)")
    parser.add_argument("--no-write", action="store_true", help="do not write the results into bench/README.md")
    parser.add_argument("--keep-logs", type=Path, help="keep the servers' and the relay's logs in this directory")
    args = parser.parse_args(argv)
    if not 1 <= args.senders <= 64 or not 0 < args.seconds <= 60 or not 0 <= args.warmup <= 30:
        parser.error("1 <= senders <= 64, 0 < seconds <= 60 and 0 <= warmup <= 30")
    if not 3 <= args.writes <= 2000 or not 0 < args.deadline <= 30 or not 1 <= args.bookings <= 2000:
        parser.error("3 <= writes <= 2000, 0 < deadline <= 30 and 1 <= bookings <= 2000")
    return args


def _vacuum(projects: LocalProjects) -> None:
    vacuum_analyze(projects.project_a_url, projects.project_b_url)


def _event_loads(
    args: argparse.Namespace, projects: LocalProjects, webhook: FunctionServer, secret: str, updates: deque[bytes]
) -> tuple[LoadResult, LoadResult]:
    """The senders' runs: the prepared UPDATE events, then INSERT events sized from the UPDATE rate."""

    def send(events: deque[bytes]) -> LoadResult:
        return run_senders(
            webhook.connection, secret, events, senders=args.senders, seconds=args.seconds, warmup=args.warmup
        )

    progress(f"{args.senders} senders: UPDATE events ({len(updates)} prepared)")
    update_load = send(updates)
    run_seconds = args.warmup + args.seconds
    inserts = insert_events(projects, math.ceil(update_load.per_second * run_seconds * 1.3) + 100 * args.senders)
    _vacuum(projects)
    progress(f"{args.senders} senders: INSERT events ({len(inserts)} prepared)")
    return update_load, send(inserts)


def _measure(args: argparse.Namespace) -> tuple[WebhookMeasurement, str]:
    with ExitStack() as stack:
        progress("starting Postgres and seeding the bench_ databases")
        logs = log_dir(args.keep_logs, stack)
        projects = fresh_projects(stack)
        postgres = postgres_version(projects.server_url)
        therapist, jwt_secret, webhook_secret = uuid4(), secrets.token_urlsafe(48), secrets.token_urlsafe(32)
        register_therapists(projects.project_a_url, [therapist])
        env = {
            **functions_env(projects),
            "PROJECT_A_JWT_SECRET": jwt_secret,
            "PROJECT_B_WEBHOOK_SECRET": webhook_secret,
        }
        run_seconds = args.warmup + args.seconds
        updates_pending = update_events(projects, math.ceil(UPDATE_EVENTS_PER_SECOND * run_seconds), therapist)
        # Clients the propagation run renames or re-addresses, and clients only in Project B for the baseline:
        # all written before the webhook is installed, so nothing syncs them early.
        in_both = add_clients(projects, args.writes, synced_to=therapist)
        only_in_b = add_clients(projects, args.bookings + BOOKING_WARMUP)
        _vacuum(projects)
        webhook = stack.enter_context(function_server(PROJECT_B_WEBHOOK, env, logs))

        updates, inserts = _event_loads(args, projects, webhook, webhook_secret, updates_pending)

        _vacuum(projects)
        progress(f"webhook installed, relay running: {args.writes} timed writes in Project B")
        url = f"http://127.0.0.1:{webhook.port}/"
        with live_webhook(projects, url, webhook_secret, logs / "relay.log") as live:
            propagation = measure_propagation(
                projects,
                in_both,
                args.writes,
                deadline=args.deadline,
                budget=PROPAGATION_BUDGET_SECONDS,
                poll=POLL_SECONDS,
                pause=PAUSE_SECONDS,
            )
            progress(
                f"{args.bookings + BOOKING_WARMUP} new clients in one Project B transaction, synced by the webhook"
            )
            burst = sync_burst(projects, args.bookings + BOOKING_WARMUP, deadline=BURST_DEADLINE_SECONDS)
            relay_deliveries, relay_alive = dict(live.relay_statuses()), live.thread.is_alive()

        progress(f"create_session: {args.bookings} bookings per case, on-demand sync vs synced by the webhook")
        booking_server = stack.enter_context(function_server(CREATE_SESSION, env, logs))
        token = sign_access_token(jwt_secret, therapist, expires_in=3600)
        bookings = measure_bookings(booking_server, token, only_in_b, burst.ids, warmup=BOOKING_WARMUP)
    measurement = WebhookMeasurement(
        senders=args.senders,
        updates=updates,
        inserts=inserts,
        propagation=propagation,
        deadline_seconds=args.deadline,
        burst=burst,
        relay_deliveries=relay_deliveries,
        relay_alive=relay_alive,
        bookings=bookings,
    )
    return measurement, postgres


def _settings(args: argparse.Namespace) -> str:
    return (
        f"functions-framework (gunicorn gthread), {SERVER_ENV['WORKERS']} worker with {SERVER_ENV['THREADS']} threads, "
        f"DB pool max {SERVER_ENV['DB_POOL_MAX_SIZE']} per project, for project_b_webhook and create_session alike. "
        f"Events: {args.senders} keep-alive senders, per event type {args.warmup:g} s warm-up + {args.seconds:g} s "
        f"measured, each event POSTed once. Propagation: {args.writes} sequential writes in Project B through "
        "the trigger, the net.http_post queue, WebhookRelay (in this process) and the server, each timed from just "
        f"before its statement is sent until a poll of Project A every {1000 * POLL_SECONDS:g} ms sees it "
        f"({args.deadline:g} s deadline, {1000 * PAUSE_SECONDS:g} ms between writes). Bookings: {args.bookings} per "
        f"case after {BOOKING_WARMUP} warm-up pairs, alternating, sequential on one keep-alive connection"
    )


def measure(args: argparse.Namespace) -> Report:
    measurement, postgres = _measure(args)
    body = webhook_table(measurement) + "\n\n" + webhook_verdict(measurement) + "\n"
    return Report(Header(postgres, _settings(args)), body)


def main(argv: list[str] | None = None) -> int:
    return run_bench("project_b_webhook", _arguments, measure, argv)


if __name__ == "__main__":
    sys.exit(main())
