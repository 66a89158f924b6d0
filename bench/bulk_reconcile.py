"""Reconcile among 100,000 synced clients: the first run (from no watermark), runs with nothing changed, and runs
after 1,000 changes in Project B (renames, email changes, deletions), with the rows each project's tables gave up
(pg_stat_all_tables) and the generic plan of client_changes, to show that a few changes are found without a scan.

Every round of the 1,000 changes meets the same work: Project A's changed clients and the watermark are put back
as they were before the changes, then reconcile runs again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bench.bulk_cases import Run, reconcile, reconcile_bulk
from bench.bulk_explain import Plan, explain_function
from bench.stack import progress
from devtools.localdb import FUNCTIONS_ROLE, LocalProjects
from shared.config import Settings
from shared.reconcile import ReconcileService
from shared.stores.pools import close_pools

ZERO_ID = UUID(int=0)
PROJECT_B_TABLES = ("public.profiles", "auth.users", "private.profile_deletions")
PROJECT_A_TABLES = ("public.clients", "private.sync_conflicts", "private.sync_state")
BACKENDS_EXIT_SECONDS = 10.0

_STATS = """
select s.schemaname || '.' || s.relname, s.seq_scan, s.seq_tup_read, coalesce(s.idx_scan, 0),
       coalesce(s.idx_tup_fetch, 0)
  from pg_stat_all_tables s
 where s.relid = any(%s::regclass[])
"""
_FUNCTION_BACKENDS = "select count(*) from pg_stat_activity where usename = %s and datname = any(%s)"
_SAMPLE = "select id from public.profiles order by md5(id::text) limit %s"
_RENAME = "update public.profiles set name = name || ' (renamed)' where id = any(%s)"
_NEW_EMAIL = "update auth.users set email = 'changed-' || id || '@example.com' where id = any(%s)"
_DELETE = "delete from public.profiles where id = any(%s)"
_KEEP = "create table public.bench_reconcile_before as select * from public.clients where id = any(%s)"
_RESTORE = """
update public.clients c
   set (full_name, email, notes, status, source_attributes, source_updated_at, last_synced_at, updated_at)
     = (b.full_name, b.email, b.notes, b.status, b.source_attributes, b.source_updated_at, b.last_synced_at,
        b.updated_at)
  from public.bench_reconcile_before b
 where c.id = b.id
"""
_WATERMARK = "select watermark, watermark_id from private.sync_state where name = 'reconcile'"
_SET_WATERMARK = "update private.sync_state set watermark = %s, watermark_id = %s where name = 'reconcile'"


@dataclass(frozen=True)
class TableReads:
    """What a table gave up during a run: sequential scans and their rows, index scans and their rows."""

    seq_scans: int
    seq_rows: int
    index_scans: int
    index_rows: int


@dataclass
class ReconcileResult:
    changes: int
    deleted: int
    emails: int
    first: Run | None = None
    unchanged: list[Run] = field(default_factory=list)
    changed: list[Run] = field(default_factory=list)
    unchanged_reads: dict[str, TableReads] = field(default_factory=dict)
    changed_reads: dict[str, TableReads] = field(default_factory=dict)
    plan: Plan | None = None


def measure_reconcile(
    projects: LocalProjects, settings: Settings, *, rounds: int, changes: int, deleted: int, emails: int
) -> ReconcileResult:
    """Project A must hold every Project B client already (a backfill ran)."""
    result = ReconcileResult(changes=changes, deleted=deleted, emails=emails)
    limit = settings.sync_page_size
    progress("reconcile: first run, no watermark yet (every client, all unchanged)")
    result.first = reconcile(reconcile_bulk(settings), limit)

    for index in range(rounds):
        progress(f"reconcile: nothing changed, round {index + 1}")
        run, reads = _observed(projects, settings, lambda bulk: reconcile(bulk, limit), observe=index == 0)
        result.unchanged.append(run)
        result.unchanged_reads = reads or result.unchanged_reads

    watermark = _watermark(projects)
    _change(projects, changes, deleted, emails)
    since = watermark[0] - timedelta(seconds=settings.reconcile_overlap_seconds)
    result.plan = explain_function(projects.project_b_url, "public.client_changes", [since, ZERO_ID, limit])

    for index in range(rounds):
        if index:
            _restore(projects, watermark)
        progress(f"reconcile: {changes} changes in Project B, round {index + 1}")
        run, reads = _observed(projects, settings, lambda bulk: reconcile(bulk, limit), observe=index == 0)
        result.changed.append(run)
        result.changed_reads = reads or result.changed_reads
    return result


def _observed(
    projects: LocalProjects, settings: Settings, run: Callable[[ReconcileService], Run], *, observe: bool
) -> tuple[Run, dict[str, TableReads]]:
    """`run` over a ReconcileService with open pools; with `observe`, what each table gave up during it.

    A backend sends its table statistics when it exits at the latest (an idle one may wait 10 s), so the pools are
    closed, and their backends gone, before each reading; the new pools are opened (one statement each, on
    private.sync_state and an empty read of Project B) after the first reading.
    """
    if not observe:
        return run(reconcile_bulk(settings)), {}
    _close_connections(projects)
    before = _reads(projects)
    bulk = reconcile_bulk(settings)
    measured = run(bulk)
    _close_connections(projects)
    after = _reads(projects)
    return measured, {
        table: TableReads(*(b - a for a, b in zip(before[table], after[table], strict=True))) for table in after
    }


def _close_connections(projects: LocalProjects) -> None:
    close_pools()
    deadline = time.monotonic() + BACKENDS_EXIT_SECONDS
    with psycopg.connect(projects.server_url, autocommit=True) as conn:
        databases = [conninfo_to_dict(url)["dbname"] for url in (projects.project_a_url, projects.project_b_url)]
        while conn.execute(_FUNCTION_BACKENDS, (FUNCTIONS_ROLE, databases)).fetchone() != (0,):
            if time.monotonic() > deadline:
                raise TimeoutError("The functions' connections did not close")
            time.sleep(0.05)


def _reads(projects: LocalProjects) -> dict[str, tuple[int, int, int, int]]:
    reads: dict[str, tuple[int, int, int, int]] = {}
    for url, tables, project in (
        (projects.project_b_url, PROJECT_B_TABLES, "Project B"),
        (projects.project_a_url, PROJECT_A_TABLES, "Project A"),
    ):
        with psycopg.connect(url, autocommit=True) as conn:
            for name, *counts in conn.execute(_STATS, (list(tables),)):
                reads[f"{project} {name}"] = (counts[0], counts[1], counts[2], counts[3])
    return reads


def _watermark(projects: LocalProjects) -> tuple[datetime, UUID]:
    with psycopg.connect(projects.project_a_url) as conn:
        row = conn.execute(_WATERMARK).fetchone()
    if row is None:
        raise RuntimeError("reconcile left no watermark")
    return row[0], row[1]


def _change(projects: LocalProjects, changes: int, deleted: int, emails: int) -> None:
    """`changes` random clients of Project B: renamed, then `emails` of them re-addressed, `deleted` deleted."""
    with psycopg.connect(projects.project_b_url) as conn:
        ids = [row[0] for row in conn.execute(_SAMPLE, (changes,))]
        renamed, emailed, gone = (
            ids[: changes - deleted - emails],
            ids[changes - deleted - emails : changes - deleted],
            ids[changes - deleted :],
        )
        conn.execute(_RENAME, (renamed,))
        conn.execute(_NEW_EMAIL, (emailed,))
        conn.execute(_DELETE, (gone,))
    with psycopg.connect(projects.project_a_url) as conn:
        conn.execute(_KEEP, (ids,))


def _restore(projects: LocalProjects, watermark: tuple[datetime, UUID]) -> None:
    with psycopg.connect(projects.project_a_url) as conn:
        conn.execute(_RESTORE)
        conn.execute(_SET_WATERMARK, watermark)
        conn.execute("truncate private.sync_conflicts")
