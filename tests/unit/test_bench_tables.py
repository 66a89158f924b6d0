"""Each bench's tables and verdict from made-up measurements, compared with the text in tests/unit/bench_tables/:
what a bench prints and writes into bench/README.md changes only when that text is changed with it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest

from bench.bulk_cases import Run, Split
from bench.bulk_explain import Plan
from bench.bulk_reconcile import ReconcileResult, TableReads
from bench.bulk_shards import ShardedRun
from bench.load import LoadResult
from bench.report.backends import ColdImport, backends_body, backends_verdict
from bench.report.backfill import BulkMeasurement, backfill_body, backfill_plans
from bench.report.create_session import Floor, Measurement, create_session_table, create_session_verdict, floor_line
from bench.report.not_found import CaseResult, not_found_table, not_found_verdict
from bench.report.webhook import WebhookMeasurement, webhook_table, webhook_verdict
from bench.roundtrips import RoundTripReport, RoundTrips
from bench.webhook_bookings import Bookings
from bench.webhook_propagation import Burst, Propagation, PropagationResult

EXPECTED = Path(__file__).resolve().parent / "bench_tables"


def _load(seconds: float, latencies: list[float], statuses: dict[str, int], exhausted: bool = False) -> LoadResult:
    return LoadResult(seconds=seconds, latencies=latencies, statuses=Counter(statuses), exhausted=exhausted)


def _session(a_synced: list[int], rate: float, *, errors: int = 0, connections: int = 0) -> Measurement:
    latencies = [0.002 * (1 + i % 7) / rate * 100 for i in range(40)]
    return Measurement(
        round_trips=RoundTripReport(
            synced=RoundTrips(project_a=a_synced, project_b=[0, 0, 0], new_connections=connections),
            first_sync=RoundTrips(project_a=[3, 3, 4], project_b=[2, 2, 2], new_connections=0),
        ),
        synced=_load(40 / rate, latencies, {"201": 40 - errors, "500": errors}),
        first_sync=_load(80 / rate, latencies, {"201": 40}, exhausted=bool(errors)),
    )


def _webhook(*, healthy: bool) -> WebhookMeasurement:
    kinds = ("insert", "name", "email")
    samples = [Propagation(kinds[i % 3], 0.004 + 0.003 * i) for i in range(12)]
    if not healthy:
        samples += [Propagation("name", None), Propagation("email", 0.250)]
    ids = [UUID(int=i) for i in range(1, 6)]
    updated = {"200 updated": 30} if healthy else {"200 updated": 28, "200 unchanged": 2}
    return WebhookMeasurement(
        senders=4,
        updates=_load(2.0, [0.001 * (1 + i % 5) for i in range(30)], updated),
        inserts=_load(2.5, [0.002 * (1 + i % 3) for i in range(20)], {"200 inserted": 20}, exhausted=not healthy),
        propagation=PropagationResult(samples=samples, stopped_early=not healthy),
        deadline_seconds=2.0,
        burst=Burst(ids=ids, arrived=5 if healthy else 3, seconds=0.0421),
        relay_deliveries={"200": 60} if healthy else {"200": 58, "503": 2},
        relay_alive=healthy,
        bookings=Bookings(
            on_demand=_load(1.0, [0.012, 0.014, 0.020, 0.011], {"201": 4}),
            proactive=_load(1.0, [0.006, 0.007, 0.009, 0.008], {"201": 3, "500": 1 - int(healthy)}),
            unexpected_sync=0 if healthy else 2,
        ),
    )


def _run(rows: int, seconds: float, a: float = 0.0, b: float = 0.0, pages: int = 0) -> Run:
    return Run(rows=rows, seconds=seconds, split=Split(project_a=a, project_b=b, pages=pages))


def _plan(rows: int, seq: list[str]) -> Plan:
    return Plan(
        text="Limit\n  ->  Index Scan", rows_scanned=rows, seq_scans=seq, shared_buffers=rows // 3, milliseconds=2.4
    )


def _backfill(*, full: bool) -> BulkMeasurement:
    m = BulkMeasurement(clients=10_000, shards=4, design_doc_clients=200)
    m.copy = [_run(10_000, 0.51), _run(10_000, 0.48), _run(10_000, 0.55)]
    if full:
        m.copy_shaped = [_run(10_000, 1.1), _run(10_000, 1.2)]
        m.copy_clients = [_run(10_000, 1.3), _run(10_000, 1.25)]
        m.staged = {1000: [_run(10_000, 2.2), _run(10_000, 2.3)]}
    m.pages = {
        1000: [_run(10_000, 1.9, a=1.2, b=0.5, pages=10), _run(10_000, 2.1, a=1.3, b=0.6, pages=10)],
        100: [_run(10_000, 4.2, a=2.9, b=1.1, pages=100), _run(9_900, 4.0, a=2.8, b=1.0, pages=99)],
    }
    m.design_doc = [_run(200, 1.5), _run(199 if full else 200, 1.6)]
    if not full:
        return m
    m.one_by_one = [_run(10_000, 2.6)]
    m.bare_insert = [_run(10_000, 0.9), _run(10_000, 0.95)]
    m.sharded = {
        1: [ShardedRun(_run(10_000, 2.4), consumers=1, shards=4, jobs_run=4, requeued=0)],
        2: [ShardedRun(_run(9_000, 1.3), consumers=2, shards=4, jobs_run=5, requeued=1)],
    }
    reads = {
        "Project A public.clients": TableReads(0, 0, 12, 150),
        "Project B public.profiles": TableReads(1, 10_000, 3, 100),
        "Project A public.sync_state": TableReads(2, 4, 0, 0),
    }
    m.reconcile = ReconcileResult(
        changes=100,
        deleted=10,
        emails=20,
        first=_run(10_000, 3.0),
        unchanged=[_run(50, 0.02), _run(50, 0.03)],
        changed=[_run(150, 0.2)],
        unchanged_reads={"Project A public.clients": TableReads(0, 0, 2, 50)},
        changed_reads=reads,
        plan=_plan(1_100, []),
    )
    m.page_plan = _plan(1_000, ["clients"])
    m.page_plan_position = 5_000
    return m


def _not_found(*, healthy: bool) -> list[CaseResult]:
    body = b'{"error": {"code": "client_not_found", "message": "No client of yours has this id"}}'
    cases = [
        ("unknown", "unknown id", 404, 0.0090, (1, 1)),
        ("theirs", "another therapist's client", 404, 0.0093 if healthy else 0.0145, (1, 1) if healthy else (2, 1)),
        ("mine", "reference: your own client", 201, 0.0060, (1, 0)),
    ]
    results = []
    for key, title, status, median, (trips_a, trips_b) in cases:
        answer = body if status == 404 else b""
        bodies = {(status, answer): 25}
        if not healthy and key == "theirs":
            bodies = {(status, answer): 24, (409, b"{}"): 1}
        results.append(
            CaseResult(
                key,
                title,
                status,
                bodies=bodies,
                round_trips_a=[trips_a] * 5,
                round_trips_b=[trips_b] * 5,
                latencies=[median - 0.001, median, median + 0.004] * 6 + [median],
            )
        )
    for key, median in (("unknown", 0.0085), ("theirs", 0.0088 if healthy else 0.0110)):
        results.append(
            CaseResult(
                key,
                f"{key} (sync_client)",
                404,
                "sync_client",
                bodies={(404, body): 25},
                round_trips_a=[1] * 5,
                round_trips_b=[1] * 5,
                latencies=[median] * 19,
            )
        )
    return results


def _backends(*, gap_ms: float, failed: int = 0) -> list[CaseResult]:
    """Each case of each implementation: round trips to A and B, and 21 latencies around a median."""
    cases = [
        ("synced", "client already synced", "direct", (1, 0), 0.0060),
        ("synced", "client already synced", "client", (1, 0), 0.0060 + gap_ms / 1000),
        ("synced", "client already synced", "baseline", (2, 0), 0.0081),
        ("first_sync", "first sync", "direct", (2, 1), 0.0125),
        ("first_sync", "first sync", "client", (4, 1), 0.0190),
        ("first_sync", "first sync", "baseline", (3, 2), 0.0148),
    ]
    results = []
    for key, title, implementation, (trips_a, trips_b), median in cases:
        bodies = {(201, b""): 30}
        if failed and implementation == "client" and key == "first_sync":
            bodies = {(201, b""): 30 - failed, (503, b"{}"): failed}
        results.append(
            CaseResult(
                key,
                title,
                201,
                implementation,
                bodies=bodies,
                round_trips_a=[trips_a] * 4 if key == "synced" else [trips_a, trips_a, trips_a + 1, trips_a],
                round_trips_b=[trips_b] * 4,
                latencies=[median - 0.0005, median, median + 0.003] * 7,
            )
        )
    return results


_COLD_IMPORTS = [
    ColdImport("direct", "`shared.stores.postgres`, `psycopg`", [0.201, 0.188, 0.240], [0.061, 0.058, 0.070]),
    ColdImport("client", "`shared.stores.rpc`, `httpx`", [0.210, 0.199, 0.205], [0.072, 0.066, 0.069]),
]
_STANDIN = {"Project A create_session": [2.4, 2.6, 2.5], "Project B client_states": [1.9, 2.1]}


OUTPUTS: dict[str, Callable[[], str]] = {
    "backends_body": lambda: backends_body(_backends(gap_ms=0.8), _COLD_IMPORTS, _STANDIN),
    "backends_verdict_not_met": lambda: backends_verdict(_backends(gap_ms=2.3, failed=2)),
    "not_found_table": lambda: not_found_table(_not_found(healthy=True)),
    "not_found_verdict_met": lambda: not_found_verdict(_not_found(healthy=True)),
    "not_found_verdict_not_met": lambda: not_found_verdict(_not_found(healthy=False)),
    "create_session_table": lambda: create_session_table(_session([3, 3, 3], 400.0), _session([1, 1, 1], 900.0), 8),
    "create_session_verdict_met": lambda: create_session_verdict(
        _session([3, 3, 3], 400.0), _session([1, 1, 1], 900.0)
    ),
    "create_session_verdict_not_met": lambda: create_session_verdict(
        _session([3, 3, 3], 400.0, errors=2), _session([1, 2, 1], 500.0, connections=3)
    ),
    "create_session_floor": lambda: floor_line(
        _session([3, 3, 3], 400.0),
        _session([1, 1, 1], 900.0),
        Floor(_load(0.1, [0.0007, 0.0006, 0.0008], {"201": 3}), booking_sql_ms=0.25),
    ),
    "create_session_floor_above": lambda: floor_line(
        _session([3, 3, 3], 400.0),
        _session([1, 1, 1], 900.0),
        Floor(_load(0.1, [0.003, 0.0031, 0.0029], {"201": 3}), booking_sql_ms=1.25),
    ),
    "webhook_table": lambda: webhook_table(_webhook(healthy=True)),
    "webhook_table_troubled": lambda: webhook_table(_webhook(healthy=False)),
    "webhook_verdict_met": lambda: webhook_verdict(_webhook(healthy=True)),
    "webhook_verdict_not_met": lambda: webhook_verdict(_webhook(healthy=False)),
    "backfill_body": lambda: backfill_body(_backfill(full=True)),
    "backfill_body_minimal": lambda: backfill_body(_backfill(full=False)),
    "backfill_plans": lambda: backfill_plans(_backfill(full=True)),
}


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_a_bench_prints_its_tables_and_verdict_as_before(name: str) -> None:
    assert OUTPUTS[name]() == (EXPECTED / f"{name}.md").read_text()
