"""backfill's tables and verdict (issues 8 and 17): >= 0.6x the COPY rate, beside the second reference (a COPY into
a table shaped like clients) and the ceiling (a COPY into clients itself), and a reconcile that does not scan."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.bulk_cases import Run
from bench.bulk_explain import Plan
from bench.bulk_reconcile import ReconcileResult, TableReads
from bench.bulk_shards import ShardedRun
from bench.report import markdown_table, met

TARGET_COPY_RATIO = 0.6
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
    copy_shaped: list[Run] = field(default_factory=list)
    copy_clients: list[Run] = field(default_factory=list)
    pages: dict[int, list[Run]] = field(default_factory=dict)
    one_by_one: list[Run] = field(default_factory=list)
    staged: dict[int, list[Run]] = field(default_factory=dict)
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


def _rate(runs: list[Run]) -> float | None:
    return median_run(runs).per_second if runs else None


def _ratio(rate: float, reference: float | None) -> str:
    return f"{rate / reference:.2f}x" if reference else ""


def _run_row(case: str, runs: list[Run], copy_rate: float | None, shaped_rate: float | None) -> tuple[str, ...]:
    median = median_run(runs)
    rates = ", ".join(f"{run.per_second:,.0f}" for run in runs)
    return (
        case,
        f"{median.rows:,}",
        f"{median.seconds:.2f}",
        f"{median.per_second:,.0f}",
        rates,
        _ratio(median.per_second, copy_rate),
        _ratio(median.per_second, shaped_rate),
    )


def _backfill_rows(m: BulkMeasurement) -> Iterable[tuple[str, ...]]:
    copy_rate, shaped = _rate(m.copy), _rate(m.copy_shaped)
    yield _run_row(
        f"`COPY` of the {m.clients:,} rows, Project B -> a table in Project A (reference)", m.copy, copy_rate, shaped
    )
    if m.copy_shaped:
        case = (
            "`COPY` of the same profiles as clients' columns into a table shaped exactly like clients, with its "
            "primary key and synced email index (second reference)"
        )
        yield _run_row(case, m.copy_shaped, copy_rate, shaped)
    if m.copy_clients:
        case = (
            "Ceiling, not the contract: that `COPY` straight into public.clients (its indexes and checks, none of the "
            "sync's rules)"
        )
        yield _run_row(case, m.copy_clients, copy_rate, shaped)
    for limit, runs in sorted(m.pages.items()):
        yield _run_row(f"Backfill (BackfillService.backfill_pages), pages of {limit:,}", runs, copy_rate, shaped)
    for limit, runs in sorted(m.staged.items()):
        case = (
            f"Issue 17's design, not the contract: pages of {limit:,} streamed by `COPY` into a staging table, then "
            "upsert_synced_clients' statement over it (bench/bulk_copy_staged.py; no answer per row nor bookkeeping)"
        )
        yield _run_row(case, runs, copy_rate, shaped)
    if m.one_by_one:
        case = (
            "Backfill page after page, nothing read ahead (BackfillService.backfill_page, as a caller of the HTTP mode "
            f"pages), pages of {m.baseline_page:,}"
        )
        yield _run_row(case, m.one_by_one, copy_rate, shaped)
    if m.bare_insert:
        case = (
            f"Floor, not the contract: the same pages of {m.baseline_page:,}, read ahead the same way, each "
            "written by a bare `INSERT ... SELECT` (no dedupe, version guard, conflict checks nor bookkeeping)"
        )
        yield _run_row(case, m.bare_insert, copy_rate, shaped)
    case = "Design document's way: check, read profile, read email, insert, one client at a time"
    yield _run_row(case, m.design_doc, copy_rate, shaped)
    for consumers, sharded in sorted(m.sharded.items()):
        label = "consumer" if consumers == 1 else "consumers"
        requeued = sum(s.requeued for s in sharded)
        note = f" ({requeued} remainders requeued)" if requeued else ""
        case = f"Sharded backfill: {m.shards} jobs (shard_ranges), {consumers} {label} in parallel{note}"
        yield _run_row(case, [s.run for s in sharded], copy_rate, shaped)
    r = m.reconcile
    if r is None:
        return
    if r.first is not None:
        yield _run_row("Reconcile, first run (no watermark: every client, all unchanged)", [r.first], None, None)
    if r.unchanged:
        case = "Reconcile, nothing changed since the watermark (rows: those re-read in the overlap)"
        yield _run_row(case, r.unchanged, None, None)
    if r.changed:
        what = f"{r.changes - r.deleted - r.emails} renamed, {r.emails} emails changed, {r.deleted} profiles deleted"
        yield _run_row(f"Reconcile, {r.changes:,} changes among {m.clients:,} clients ({what})", r.changed, None, None)


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
        + f" -> {met(best >= TARGET_COPY_RATIO)}"
    ]
    if m.copy_shaped:
        shaped = median_run(m.copy_shaped).per_second
        parts[0] += " (against the second reference, the COPY into a table shaped like clients: " + ", ".join(
            f"pages of {limit:,} {median_run(runs).per_second / shaped:.2f}x" for limit, runs in sorted(m.pages.items())
        )
        parts[0] += ")"
    bounds = []
    if m.staged:
        staged = ", ".join(
            f"pages of {limit:,} {median_run(runs).per_second / copy_rate:.2f}x"
            for limit, runs in sorted(m.staged.items())
        )
        bounds.append(f"issue 17's design (COPY into a staging table): {staged}")
    if m.copy_clients:
        bounds.append(
            f"the ceiling, a COPY straight into clients: {median_run(m.copy_clients).per_second / copy_rate:.2f}x"
        )
    if m.bare_insert:
        bounds.append(f"the bare INSERT's floor: {median_run(m.bare_insert).per_second / copy_rate:.2f}x")
    if bounds:
        parts[0] += " (not targets: " + "; ".join(bounds) + ")"
    r = m.reconcile
    if r is not None and r.changed_reads:
        ok, seq, rows = _scans(r, m.clients)
        parts.append(
            f"reconcile of {r.changes:,} changes does not scan the {m.clients:,} clients: {seq} sequential scans of "
            f"profiles, auth.users or clients, {rows:,} rows read from them -> {met(ok)}"
        )
    line = "Targets: " + "; ".join(parts) + "."
    wrong = [
        f"{name} moved {run.rows:,}"
        for name, runs in [
            ("COPY", m.copy),
            ("COPY into clients' shape", m.copy_shaped),
            ("COPY into clients", m.copy_clients),
            *((f"pages of {k}", v) for k, v in m.pages.items()),
            *((f"staged pages of {k}", v) for k, v in m.staged.items()),
        ]
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
        markdown_table(
            [
                "Case",
                "Rows",
                "Time (s), median run",
                "Rows/s, median",
                "Rows/s, each run",
                "÷ COPY rate",
                "÷ COPY into clients' shape",
            ],
            "lrrrlrr",
            _backfill_rows(m),
        ),
        "",
        backfill_verdict(m),
        "",
        "Where the backfill's time goes (each project's call as the backfill makes it: pool, round trip and psycopg "
        "included):",
        "",
        markdown_table(
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
        reads = markdown_table(
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
