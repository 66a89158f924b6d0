"""Where a synced client's booking spends its time on the Lambda path: `python -m bench.booking_time`.

create_session's `lambda_handler`, called in process with API Gateway HTTP API v2 events (tests/events/), as the
Lambda runtime calls it, one request at a time, over the direct backend as client_sync, with `--db-rtt-ms` added to
every round trip to Postgres (bench/rtt_proxy.py). Beside it, each part of the request measured alone, in the same
process and rounds: token verification, request parsing and validation, pool checkout, one round trip (`select 1`
on a pooled connection), the SQL's own time on the server (the booking's statement on a local connection, less that
connection's `select 1`; and EXPLAIN ANALYZE's execution time, which leaves out the commit) and building the answer.
Target: the handler's p50 within 1 ms of one round trip plus the SQL's server time.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import statistics
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from bench.booking_sql import BookingSql, timed_ms
from bench.options import one_caller_arguments
from bench.report import Header, Report, run_bench
from bench.rtt_proxy import RttProxy
from bench.stack import add_clients, fresh_projects, postgres_version, progress, vacuum_analyze
from devtools.localdb import register_therapists
from devtools.tokens import sign_access_token

ROOT = Path(__file__).resolve().parents[1]
EVENT = json.loads((ROOT / "tests" / "events" / "create_session.json").read_text())
JWT_SECRET = "bench-jwt-secret-" + "x" * 32
_BASE = datetime(2031, 1, 6, 9, tzinfo=UTC)
_minutes = count()
PARTS = ("token", "parse", "checkout", "round_trip", "sql_server", "sql_explain", "answer")
TITLES = {
    "handler": "lambda_handler, whole request",
    "token": "token verification (verify_access_token)",
    "parse": "request parsing and validation (from_lambda, checks, parse_body, Idempotency-Key)",
    "checkout": "pool checkout and return (no statement)",
    "round_trip": "one round trip: `select 1` on a pooled connection",
    "sql_server": "the booking's SQL on the server: its statement on a local connection less `select 1` there",
    "sql_explain": "the booking's SQL, EXPLAIN ANALYZE execution time (no commit)",
    "answer": "building the answer (the 201's JSON and headers)",
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    return one_caller_arguments("booking_time", __doc__, argv, requests=400, warmup=30, logs=False)


def _body(client_id: UUID) -> str:
    starts_at = _BASE + timedelta(minutes=next(_minutes))
    return json.dumps({"client_id": str(client_id), "starts_at": starts_at.isoformat(), "duration_minutes": 50})


def _event(token: str, client_id: UUID) -> dict[str, Any]:
    headers = {**EVENT["headers"], "authorization": f"Bearer {token}"}
    return {**EVENT, "headers": headers, "body": _body(client_id)}


def measure(args: argparse.Namespace) -> Report:
    header = Header(postgres="", settings="")
    with ExitStack() as stack:
        progress("starting Postgres and the projects")
        projects = fresh_projects(stack, prefix="bench_booking_")
        therapist = uuid4()
        register_therapists(projects.project_a_url, [therapist])
        (client_id,) = add_clients(projects, 1, synced_to=therapist)
        vacuum_analyze(projects.project_a_url, projects.project_b_url)
        proxy_a = stack.enter_context(RttProxy(projects.project_a_functions_url, delay_seconds=args.db_rtt_ms / 1000))
        proxy_b = stack.enter_context(RttProxy(projects.project_b_functions_url, delay_seconds=args.db_rtt_ms / 1000))
        os.environ.update(
            {
                "PROJECT_A_DB_URL": proxy_a.url(),
                "PROJECT_B_DB_URL": proxy_b.url(),
                "PROJECT_A_JWT_SECRET": JWT_SECRET,
                "PROJECT_B_WEBHOOK_SECRET": "w" * 32,
            }
        )
        header = Header(
            postgres=postgres_version(projects.server_url),
            settings=(
                f"create_session's lambda_handler in process (API Gateway HTTP API v2 events), direct backend as "
                f"client_sync, one request at a time; {args.warmup} warm-up requests, then {args.requests} timed, "
                f"each part timed alone in the same rounds; {args.db_rtt_ms:g} ms added per round trip to Postgres"
            ),
        )
        times = _run(args, projects.project_a_url, therapist, client_id)
    return Report(header=header, body=_body_table(times, args.db_rtt_ms))


def _run(args: argparse.Namespace, admin_a: str, therapist: UUID, client_id: UUID) -> dict[str, list[float]]:
    from shared.auth import verify_access_token
    from shared.config import get_settings
    from shared.http import HttpResponse, from_lambda, parse_body, require_json_post, to_lambda
    from shared.models import CreateSessionRequest
    from shared.stores.pools import pooled_connection
    from shared.wiring import projects

    spec = importlib.util.spec_from_file_location("create_session_main", ROOT / "functions/create_session/main.py")
    assert spec and spec.loader
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    token = sign_access_token(JWT_SECRET, therapist, expires_in=24 * 3600)
    settings = get_settings()
    project_a, _ = projects()
    pool = project_a._pool()  # type: ignore[attr-defined]
    booking_sql = BookingSql(admin_a, therapist, client_id, lambda: _BASE + timedelta(minutes=next(_minutes)))

    def answer() -> None:
        session = {
            "id": str(uuid4()),
            "client_id": str(client_id),
            "therapist_id": str(therapist),
            "starts_at": "2031-01-06T09:00:00+00:00",
            "duration_minutes": 50,
            "status": "scheduled",
            "notes": None,
            "created_at": "2026-12-03T10:00:00.123456+00:00",
        }
        to_lambda(HttpResponse(201, {"session": session, "client_synced": False}))

    def parse() -> None:
        request = from_lambda(_event(token, client_id))
        require_json_post(request, settings.max_body_bytes)
        parse_body(request, CreateSessionRequest)
        main._idempotency_key(request.headers.get("idempotency-key"))

    def checkout() -> None:
        with pooled_connection(pool):
            pass

    def round_trip() -> None:
        with pooled_connection(pool) as conn:
            conn.execute("select 1").fetchone()

    def handler() -> None:
        answer = main.lambda_handler(_event(token, client_id), None)
        assert answer["statusCode"] == 201, answer

    parts: dict[str, Callable[[], float]] = {
        "handler": lambda: timed_ms(handler),
        "token": lambda: timed_ms(lambda: verify_access_token(f"Bearer {token}", settings)),
        "parse": lambda: timed_ms(parse),
        "checkout": lambda: timed_ms(checkout),
        "round_trip": lambda: timed_ms(round_trip),
        "sql_server": booking_sql.server_ms,
        "sql_explain": booking_sql.explain_ms,
        "answer": lambda: timed_ms(answer),
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    progress(f"{args.warmup} warm-up rounds, then {args.requests} timed")
    # The function's log lines are written, as Lambda's runtime takes them from stdout, but not onto the terminal.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for index in range(args.warmup + args.requests):
            for name, part in parts.items():
                took = part()
                if index >= args.warmup:
                    times[name].append(took)
    booking_sql.close()
    return times


def _p50(values: list[float]) -> float:
    return statistics.median(values)


def _body_table(times: dict[str, list[float]], db_rtt_ms: float) -> str:
    lines = [
        "| Part | p50 (ms) | p95 (ms) |",
        "|---|---:|---:|",
    ]
    for name in ("handler", *PARTS):
        values = sorted(times[name])
        lines.append(f"| {TITLES[name]} | {_p50(values):.2f} | {values[int(len(values) * 0.95) - 1]:.2f} |")
    handler, trip, server = _p50(times["handler"]), _p50(times["round_trip"]), _p50(times["sql_server"])
    named = sum(_p50(times[name]) for name in PARTS if name not in ("sql_explain",))
    bound = trip + server + 1.0
    verdict = "met" if handler <= bound else "NOT met"
    lines += [
        "",
        f"The parts' p50s (EXPLAIN's left out: it is inside the server's time) add up to {named:.2f} ms; the "
        f"handler's p50 is {handler:.2f} ms. What is not a part: the service's own code, the retry and deadline "
        "wrappers, the log lines and the metrics line.",
        "",
        f"Target: the Lambda path's p50 within 1 ms of one round trip plus the SQL's server time: {handler:.2f} ms "
        f"against {trip:.2f} + {server:.2f} + 1 = {bound:.2f} ms -> {verdict}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return run_bench("booking_time", _arguments, measure, argv)


if __name__ == "__main__":
    raise SystemExit(main())
