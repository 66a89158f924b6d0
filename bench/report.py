"""The benchmarks' report: each bench's Markdown tables and verdict on its issue's targets, the header of a run,
and the writer of the results into bench/README.md, between the bench's own two marker lines."""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench.bulk_cases import Run
from bench.bulk_explain import Plan
from bench.bulk_reconcile import ReconcileResult, TableReads
from bench.bulk_shards import ShardedRun
from bench.load import LoadResult
from bench.roundtrips import RoundTripReport
from bench.stack import progress
from bench.webhook_bookings import Bookings
from bench.webhook_events import failures, without_write
from bench.webhook_propagation import KINDS, Burst, PropagationResult

README = Path(__file__).resolve().parent / "README.md"


# The writer: a run replaces the text between its two markers and nothing else.


class MissingResultsSection(LookupError):
    """The results file has no section for this bench (its two marker lines, once each, in order)."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- results:{name} -->", f"<!-- /results:{name} -->"


def _section_bounds(text: str, name: str, path: Path) -> tuple[int, int]:
    begin, end = markers(name)
    start, stop = text.find(begin), text.find(end)
    if text.count(begin) != 1 or text.count(end) != 1 or stop < start:
        raise MissingResultsSection(
            f"{path} needs the lines {begin} and {end}, once each and in this order: "
            f"{name}'s results are written between them"
        )
    return start + len(begin), stop


def _read(path: Path, name: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise MissingResultsSection(f"{path} does not exist: {name}'s results are written into it") from None


def check_section(name: str, path: Path = README) -> None:
    """Raises MissingResultsSection unless `path` has `name`'s section (checked before a run, not after)."""
    _section_bounds(_read(path, name), name, path)


def write_section(name: str, text: str, path: Path = README) -> Path:
    """`text` between `name`'s two markers in `path`, in place of what was there; the rest untouched."""
    current = _read(path, name)
    start, stop = _section_bounds(current, name, path)
    path.write_text(current[:start] + "\n" + text.strip("\n") + "\n" + current[stop:])
    return path


# A run's header and the bench's main.


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "?"


@dataclass(frozen=True)
class Header:
    """When, where and how a bench ran: the list above its tables."""

    postgres: str
    settings: str
    machine_note: str = ""  # after the machine, e.g. the load average
    server_note: str = ""  # after "same server for both projects", e.g. the server's settings
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def lines(self, name: str) -> list[str]:
        nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        machine = f"{nproc} CPUs (nproc), {cpu_model()}, {platform.system()} {platform.release()}"
        return [
            f"- Date: {self.started:%Y-%m-%d %H:%M} UTC",
            f"- Machine: {machine}{self.machine_note}",
            f"- Python {platform.python_version()}, PostgreSQL {self.postgres} (same server for both projects"
            f"{self.server_note})",
            f"- {self.settings}",
            f"- Run: `make bench` (`.venv/bin/python -m bench.{name}`)",
        ]


@dataclass(frozen=True)
class Report:
    """What a bench run found: `body` (tables and verdict) printed and written, `details` written only, folded."""

    header: Header
    body: str
    details: str = ""
    details_title: str = ""
    print_header: bool = False

    def printed(self, name: str) -> str:
        return "\n".join([*self.header.lines(name), "", self.body]) if self.print_header else self.body

    def section(self, name: str) -> str:
        parts = [*self.header.lines(name), "", self.body.strip("\n")]
        if self.details:
            details = self.details.strip("\n")
            parts += ["", f"<details><summary>{self.details_title}</summary>", "", details, "", "</details>"]
        return "\n".join(parts)


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwinds through every `finally`: servers and consumers stopped, databases dropped


def run_bench(
    name: str,
    arguments: Callable[[list[str] | None], argparse.Namespace],
    measure: Callable[[argparse.Namespace], Report],
    argv: list[str] | None,
    *,
    path: Path = README,
) -> int:
    """A bench script's main: parse, stop cleanly on SIGTERM, measure, write the results (unless --no-write: the
    section is checked first, so a long run does not end on a missing one), print the tables."""
    args = arguments(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if not args.no_write:
            check_section(name, path)
        report = measure(args)
        if not args.no_write:
            progress(f"written to {write_section(name, report.section(name), path)}")
    except MissingResultsSection as exc:
        print(f"bench.{name}: {exc}", file=sys.stderr)
        return 2
    print(report.printed(name))
    return 0


def _table(header: Sequence[str], align: str, rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; `align` has a letter per column, l(eft) or r(ight)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


# create_session against the design document's algorithm: 1 round trip to Project A for a synced client, and
# >= 1.5x the throughput.

TARGET_ROUND_TRIPS_A = 1
TARGET_SPEEDUP = 1.5
_CASES = (("synced", "client already synced"), ("first_sync", "first sync"))


@dataclass(frozen=True)
class Measurement:
    """Everything measured for one implementation."""

    round_trips: RoundTripReport
    synced: LoadResult
    first_sync: LoadResult


@dataclass(frozen=True)
class _Row:
    metric: str
    baseline: float
    create_session: float
    shown: tuple[str, str]


def _rt(values: list[int]) -> tuple[float, str]:
    median = statistics.median(values)
    low, high = min(values), max(values)
    return median, (f"{low}" if low == high else f"{median:g} ({low}-{high})")


def _session_rows(baseline: Measurement, ours: Measurement, callers: int) -> list[_Row]:
    rows = []
    for case, label in _CASES:
        for project, name in (("project_a", "Project A"), ("project_b", "Project B")):
            b_value, b_text = _rt(getattr(getattr(baseline.round_trips, case), project))
            o_value, o_text = _rt(getattr(getattr(ours.round_trips, case), project))
            rows.append(_Row(f"Round trips to {name} per request, {label}", b_value, o_value, (b_text, o_text)))
    for case, label in _CASES:
        b_load: LoadResult = getattr(baseline, case)
        o_load: LoadResult = getattr(ours, case)
        b_rate, o_rate = b_load.per_second, o_load.per_second
        rows.append(_Row(f"Requests/s, {callers} callers, {label}", b_rate, o_rate, (f"{b_rate:.0f}", f"{o_rate:.0f}")))
        for pct in (50, 95):
            b_ms, o_ms = b_load.percentile_ms(pct), o_load.percentile_ms(pct)
            rows.append(_Row(f"p{pct} latency (ms), {label}", b_ms, o_ms, (f"{b_ms:.1f}", f"{o_ms:.1f}")))
        shown = (f"{b_load.requests} / {b_load.errors}", f"{o_load.requests} / {o_load.errors}")
        rows.append(_Row(f"Requests measured / failed, {label}", b_load.requests, o_load.requests, shown))
    return rows


def _ratio(row: _Row) -> str:
    if row.metric.startswith("Requests measured"):
        return ""
    if row.baseline == 0:
        return "-" if row.create_session == 0 else "inf"
    return f"{row.create_session / row.baseline:.2f}x"


def create_session_table(baseline: Measurement, ours: Measurement, callers: int) -> str:
    return _table(
        ["Metric", "Design document baseline", "create_session", "Ratio (create_session ÷ baseline)"],
        "lrrr",
        ((row.metric, *row.shown, _ratio(row)) for row in _session_rows(baseline, ours, callers)),
    )


def create_session_verdict(baseline: Measurement, ours: Measurement) -> str:
    synced_a = max(ours.round_trips.synced.project_a)
    parts = [
        f"1 round trip to Project A for a synced client: {synced_a} -> {_met(synced_a <= TARGET_ROUND_TRIPS_A)}",
    ]
    for case, label in (("synced", "synced client"), ("first_sync", "first sync")):
        b_rate, o_rate = getattr(baseline, case).per_second, getattr(ours, case).per_second
        speedup = o_rate / b_rate if b_rate else 0.0
        parts.append(f">= {TARGET_SPEEDUP:g}x throughput, {label}: {speedup:.2f}x -> {_met(speedup >= TARGET_SPEEDUP)}")
    failures = [
        name
        for name, measurement in (("baseline", baseline), ("create_session", ours))
        for load in (measurement.synced, measurement.first_sync)
        if load.errors or load.exhausted
    ]
    line = "Targets: " + "; ".join(parts) + "."
    if failures:
        line += " Caution: failed requests or too few seeded clients in: " + ", ".join(sorted(set(failures))) + "."
    opened = sum(
        trips.new_connections
        for measurement in (baseline, ours)
        for trips in (measurement.round_trips.synced, measurement.round_trips.first_sync)
    )
    if opened:
        line += f" Caution: {opened} database connections were opened while round trips were counted."
    return line


# project_b_webhook: the median from a Project B write to the row in Project A under 100 ms on loopback.

TARGET_MEDIAN_MS = 100.0
_KIND_LABELS = {"insert": "new client", "name": "renamed profile", "email": "changed email"}


@dataclass(frozen=True)
class WebhookMeasurement:
    senders: int
    updates: LoadResult
    inserts: LoadResult
    propagation: PropagationResult
    deadline_seconds: float
    burst: Burst
    relay_deliveries: dict[str, int]
    relay_alive: bool
    bookings: Bookings


def _ms(values: list[float], pct: int) -> float:
    return LoadResult(latencies=values).percentile_ms(pct)


def _event_rows(label: str, load: LoadResult, senders: int) -> list[tuple[str, str, str]]:
    return [
        (f"Events/s, {senders} senders, {label}", f"{load.per_second:.0f}", "-"),
        (
            f"Latency per event p50 / p95 (ms), {label}",
            f"{load.percentile_ms(50):.1f} / {load.percentile_ms(95):.1f}",
            "-",
        ),
        (
            f"Events measured / failed / wrote nothing, {label}",
            f"{load.requests} / {failures(load)} / {without_write(load)}",
            "0 failed, 0 without a write",
        ),
    ]


def _propagation_rows(m: WebhookMeasurement) -> list[tuple[str, str, str]]:
    p = m.propagation
    arrived = p.arrived()
    by_kind = " / ".join(f"{_ms(p.arrived(kind), 50):.1f}" for kind in KINDS)
    deliveries = sum(m.relay_deliveries.values())
    not_ok = deliveries - m.relay_deliveries.get("200", 0)
    burst_arrived = "" if m.burst.arrived == len(m.burst.ids) else f" ({m.burst.arrived} arrived)"
    return [
        ("Project B write -> row in Project A, median (ms)", f"{_ms(arrived, 50):.1f}", f"< {TARGET_MEDIAN_MS:g}"),
        ("Project B write -> row in Project A, p95 (ms)", f"{_ms(arrived, 95):.1f}", "-"),
        ("Project B write -> row in Project A, max (ms)", f"{1000 * max(arrived, default=0.0):.1f}", "-"),
        ("Median by write: " + " / ".join(_KIND_LABELS[kind] for kind in KINDS) + " (ms)", by_kind, "-"),
        (
            f"Writes measured / not in Project A within {m.deadline_seconds:g} s",
            f"{len(p.samples)} / {p.missing}",
            "0 not arrived",
        ),
        (
            f"{len(m.burst.ids)} clients inserted in one Project B transaction: all in Project A after (ms)",
            f"{1000 * m.burst.seconds:.0f}{burst_arrived}",
            "-",
        ),
        ("Relay deliveries / not answered 200", f"{deliveries} / {not_ok}", "0 not 200"),
    ]


def _booking_rows(b: Bookings) -> list[tuple[str, str, str]]:
    rows = []
    for pct in (50, 95):
        base, ours = b.on_demand.percentile_ms(pct), b.proactive.percentile_ms(pct)
        rows.append((f"Booking p{pct} (ms), client only in Project B (on-demand sync)", f"{base:.1f}", "baseline"))
        ratio = f"{ours / base:.2f}x the baseline" if base else "-"
        rows.append((f"Booking p{pct} (ms), client the webhook already synced", f"{ours:.1f}", ratio))
    measured = b.on_demand.requests + b.proactive.requests
    failed = b.on_demand.errors + b.proactive.errors
    rows.append(("Bookings measured / failed (both cases)", f"{measured} / {failed}", "0 failed"))
    return rows


def webhook_table(m: WebhookMeasurement) -> str:
    rows = [
        *_event_rows("UPDATE (profile changed)", m.updates, m.senders),
        *_event_rows("INSERT (new client)", m.inserts, m.senders),
        *_propagation_rows(m),
        *_booking_rows(m.bookings),
    ]
    return _table(["Metric", "Value", "Target / baseline"], "lrl", rows)


def webhook_verdict(m: WebhookMeasurement) -> str:
    """The target, and a caution for anything that makes it doubtful."""
    arrived = m.propagation.arrived()
    median = _ms(arrived, 50)
    line = (
        f"Target: median from a Project B write to the row in Project A under {TARGET_MEDIAN_MS:g} ms on loopback: "
        f"{median:.1f} ms -> {_met(bool(arrived) and median < TARGET_MEDIAN_MS and not m.propagation.missing)}."
    )
    cautions = []
    if m.propagation.missing:
        cautions.append(f"{m.propagation.missing} writes never reached Project A")
    if m.propagation.stopped_early:
        cautions.append("the propagation run stopped early (time budget)")
    if not m.relay_alive:
        cautions.append("the relay thread died")
    if sum(m.relay_deliveries.values()) - m.relay_deliveries.get("200", 0):
        cautions.append("the relay saw answers other than 200")
    if m.burst.arrived != len(m.burst.ids):
        cautions.append("the burst did not fully arrive")
    for label, load in (("UPDATE", m.updates), ("INSERT", m.inserts)):
        if failures(load) or without_write(load):
            cautions.append(f"{label} events failed or wrote nothing")
        if load.exhausted:
            cautions.append(f"too few prepared {label} events (the run ended early)")
    if m.bookings.on_demand.errors or m.bookings.proactive.errors:
        cautions.append("bookings failed")
    if m.bookings.unexpected_sync:
        cautions.append(f"{m.bookings.unexpected_sync} bookings copied (or did not copy) the client unexpectedly")
    if cautions:
        line += " Caution: " + "; ".join(cautions) + "."
    return line


# backfill (issue 8): >= 0.5x the COPY rate, and a reconcile that does not scan.

TARGET_COPY_RATIO = 0.5
# Reconcile "does not scan": no sequential scan of a table holding every client (profiles and auth.users in
# Project B, clients in Project A), and fewer rows read from them than this share of the clients.
SCAN_SHARE = 0.1
CLIENT_TABLES = ("Project B public.profiles", "Project B auth.users", "Project A public.clients")


@dataclass
class BulkMeasurement:
    clients: int
    shards: int
    design_doc_clients: int
    copy: list[Run] = field(default_factory=list)
    pages: dict[int, list[Run]] = field(default_factory=dict)
    one_by_one: list[Run] = field(default_factory=list)
    bare_insert: list[Run] = field(default_factory=list)
    baseline_page: int = 1000
    design_doc: list[Run] = field(default_factory=list)
    sharded: dict[int, list[ShardedRun]] = field(default_factory=dict)
    reconcile: ReconcileResult | None = None
    page_plan: Plan | None = None
    page_plan_position: int = 0


def median_run(runs: list[Run]) -> Run:
    """The run with the median rate (the lower of the two middle ones for an even count)."""
    rate = statistics.median_low([run.per_second for run in runs])
    return next(run for run in runs if run.per_second == rate)


def _run_row(case: str, runs: list[Run], copy_rate: float | None) -> tuple[str, ...]:
    median = median_run(runs)
    ratio = f"{median.per_second / copy_rate:.2f}x" if copy_rate else ""
    rates = ", ".join(f"{run.per_second:,.0f}" for run in runs)
    return (case, f"{median.rows:,}", f"{median.seconds:.2f}", f"{median.per_second:,.0f}", rates, ratio)


def _backfill_rows(m: BulkMeasurement) -> Iterable[tuple[str, ...]]:
    copy_rate = median_run(m.copy).per_second
    yield _run_row(
        f"`COPY` of the {m.clients:,} rows, Project B -> a table in Project A (reference)", m.copy, copy_rate
    )
    for limit, runs in sorted(m.pages.items()):
        yield _run_row(f"Backfill (BackfillService.backfill_pages), pages of {limit:,}", runs, copy_rate)
    if m.one_by_one:
        case = (
            "Backfill page after page, nothing read ahead (BackfillService.backfill_page, as a caller of the HTTP mode "
            f"pages), pages of {m.baseline_page:,}"
        )
        yield _run_row(case, m.one_by_one, copy_rate)
    if m.bare_insert:
        case = (
            f"Floor, not the contract: the same pages of {m.baseline_page:,}, read ahead the same way, each "
            "written by a bare `INSERT ... SELECT` (no dedupe, version guard, conflict checks nor bookkeeping)"
        )
        yield _run_row(case, m.bare_insert, copy_rate)
    case = "Design document's way: check, read profile, read email, insert, one client at a time"
    yield _run_row(case, m.design_doc, copy_rate)
    for consumers, sharded in sorted(m.sharded.items()):
        label = "consumer" if consumers == 1 else "consumers"
        requeued = sum(s.requeued for s in sharded)
        note = f" ({requeued} remainders requeued)" if requeued else ""
        case = f"Sharded backfill: {m.shards} jobs (shard_ranges), {consumers} {label} in parallel{note}"
        yield _run_row(case, [s.run for s in sharded], copy_rate)
    r = m.reconcile
    if r is None:
        return
    if r.first is not None:
        yield _run_row("Reconcile, first run (no watermark: every client, all unchanged)", [r.first], None)
    if r.unchanged:
        case = "Reconcile, nothing changed since the watermark (rows: those re-read in the overlap)"
        yield _run_row(case, r.unchanged, None)
    if r.changed:
        what = f"{r.changes - r.deleted - r.emails} renamed, {r.emails} emails changed, {r.deleted} profiles deleted"
        yield _run_row(f"Reconcile, {r.changes:,} changes among {m.clients:,} clients ({what})", r.changed, None)


def _split_rows(m: BulkMeasurement) -> Iterable[tuple[str, ...]]:
    for limit, runs in sorted(m.pages.items()):
        run = median_run(runs)
        split, total = run.split, run.seconds
        rest = max(total - split.project_a, 0.0)
        pages = max(split.pages, 1)
        yield (
            f"pages of {limit:,}",
            f"{split.pages}",
            f"{split.project_b:.1f} s ({split.project_b / total:.0%})",
            f"{split.project_a:.1f} s ({split.project_a / total:.0%})",
            f"{rest:.1f} s ({rest / total:.0%})",
            f"{1000 * split.project_b / pages:.0f} / {1000 * split.project_a / pages:.0f}",
        )


def _reads_rows(r: ReconcileResult) -> Iterable[tuple[str, ...]]:
    empty = TableReads(0, 0, 0, 0)
    for table in sorted(set(r.changed_reads) | set(r.unchanged_reads)):
        u, c = r.unchanged_reads.get(table, empty), r.changed_reads.get(table, empty)
        yield (
            table,
            f"{u.seq_scans} / {u.seq_rows:,}",
            f"{u.index_scans:,} / {u.index_rows:,}",
            f"{c.seq_scans} / {c.seq_rows:,}",
            f"{c.index_scans:,} / {c.index_rows:,}",
        )


def _plan_line(name: str, plan: Plan) -> str:
    seq = ", ".join(plan.seq_scans) if plan.seq_scans else "none"
    return (
        f"{name}: {plan.rows_scanned:,} rows through its scans, sequential scans: {seq}, "
        f"{plan.shared_buffers:,} shared buffers, {plan.milliseconds:.0f} ms"
    )


def _scans(r: ReconcileResult, clients: int) -> tuple[bool, int, int]:
    reads = [r.changed_reads[table] for table in CLIENT_TABLES if table in r.changed_reads]
    seq = sum(t.seq_scans for t in reads)
    rows = sum(t.seq_rows + t.index_rows for t in reads)
    return seq == 0 and rows < SCAN_SHARE * clients, seq, rows


def backfill_verdict(m: BulkMeasurement) -> str:
    copy_rate = median_run(m.copy).per_second
    ratios = {limit: median_run(runs).per_second / copy_rate for limit, runs in m.pages.items()}
    best = max(ratios.values(), default=0.0)
    parts = [
        f">= {TARGET_COPY_RATIO:g}x the COPY rate: "
        + ", ".join(f"pages of {limit:,} {ratio:.2f}x" for limit, ratio in sorted(ratios.items()))
        + f" -> {_met(best >= TARGET_COPY_RATIO)}"
    ]
    if m.bare_insert:
        floor = median_run(m.bare_insert).per_second / copy_rate
        parts[0] += f" (the bare INSERT's floor: {floor:.2f}x)"
    r = m.reconcile
    if r is not None and r.changed_reads:
        ok, seq, rows = _scans(r, m.clients)
        parts.append(
            f"reconcile of {r.changes:,} changes does not scan the {m.clients:,} clients: {seq} sequential scans of "
            f"profiles, auth.users or clients, {rows:,} rows read from them -> {_met(ok)}"
        )
    line = "Targets: " + "; ".join(parts) + "."
    wrong = [
        f"{name} moved {run.rows:,}"
        for name, runs in [("COPY", m.copy), *((f"pages of {k}", v) for k, v in m.pages.items())]
        for run in runs
        if run.rows != m.clients
    ]
    wrong += [
        f"{s.consumers} consumers inserted {s.run.rows:,}"
        for runs in m.sharded.values()
        for s in runs
        if s.run.rows != m.clients
    ]
    wrong += [
        f"design document's way inserted {run.rows:,}" for run in m.design_doc if run.rows != m.design_doc_clients
    ]
    if wrong:
        line += f" Caution, a run did not move every row: {'; '.join(wrong)}."
    return line


def backfill_body(m: BulkMeasurement) -> str:
    sections = [
        _table(
            ["Case", "Rows", "Time (s), median run", "Rows/s, median", "Rows/s, each run", "÷ COPY rate"],
            "lrrrlr",
            _backfill_rows(m),
        ),
        "",
        backfill_verdict(m),
        "",
        "Where the backfill's time goes (each project's call as the backfill makes it: pool, round trip and psycopg "
        "included):",
        "",
        _table(
            [
                "Backfill, median run",
                "Pages",
                "Project B: read_client_page (client_page), read ahead in a thread",
                "Project A: apply_sync_page",
                "Not in Project A (waiting for a page, the loop, logging)",
                "ms per page (B / A)",
            ],
            "lrrrrr",
            _split_rows(m),
        ),
        "",
    ]
    r = m.reconcile
    if r is not None and r.changed_reads:
        reads = _table(
            [
                "Table",
                "Nothing changed: seq scans / rows",
                "index scans / rows",
                f"{r.changes:,} changes: seq scans / rows",
                "index scans / rows",
            ],
            "lrrrr",
            _reads_rows(r),
        )
        sections += ["Rows the reconcile runs read (pg_stat_all_tables, first round of each):", "", reads, ""]
        if r.plan is not None:
            sections += [_plan_line("client_changes, first page", r.plan), ""]
    if m.page_plan is not None:
        sections += [_plan_line(f"client_page after the {m.page_plan_position:,}th client", m.page_plan), ""]
    return "\n".join(sections)


def _plan_block(intro: str, name: str, plan: Plan) -> list[str]:
    return [intro, "", _plan_line(name, plan), "", "```", plan.text, "```", ""]


def backfill_plans(m: BulkMeasurement) -> str:
    parts = []
    if m.page_plan is not None:
        intro = (
            f"client_page, a page of 1,000 after the {m.page_plan_position:,}th client, as the function plans it "
            "(generic plan, bench/bulk_explain.py):"
        )
        parts += _plan_block(intro, "client_page", m.page_plan)
    r = m.reconcile
    if r is not None and r.plan is not None:
        intro = (
            f"client_changes at the reconcile's start (watermark less the overlap), limit 1,000, after the "
            f"{r.changes:,} changes, as the function plans it:"
        )
        parts += _plan_block(intro, "client_changes", r.plan)
    return "\n".join(parts)
