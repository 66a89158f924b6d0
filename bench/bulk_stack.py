"""The backfill benchmark's stack: a Postgres with fresh bench_bulk_ databases, 100,000 Project B clients seeded
set-based, Project A emptied between runs, and BulkSync over the functions' own login.

Self-contained on purpose (only devtools.localdb and shared/): it needs no function server.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import psycopg
from psycopg import sql

from bench import stack
from bench.report import cpu_model
from bench.rtt_proxy import RttProxy
from devtools.localdb import LocalProjects
from shared.bulk import BulkSync
from shared.config import Settings
from shared.ports import ClientPage, PageApplied, Watermark
from shared.stores.pools import pooled_connection
from shared.stores.postgres import PostgresProjectA, PostgresProjectB

PREFIX = "bench_bulk_"

# sync_client's deployed settings (template.yaml, SyncClientFunction): a 120 s Timeout, 90 s per job; the
# statement timeouts, pool and retries are the defaults every function has.
FUNCTION_TIMEOUT_SECONDS = 120
JOB_BUDGET_SECONDS = 90.0

# Profiles written over the past weeks (one every 20 s, the newest an hour ago), as an existing Project B's are:
# a reconcile then finds what changed since its watermark, not the seeding. The version trigger is off while
# seeding (session_replication_role = replica) so the rows keep these times; ids are random, emails unique.
_SEED = """
with ids as materialized (
  select gen_random_uuid() as id, n from generate_series(1, %(count)s) as n
), users as (
  insert into auth.users (id, email)
  select id, 'bench-' || id || '@example.com' from ids
  returning id
)
insert into public.profiles (id, name, age, gender_identity, avatar_url, created_at, updated_at)
select i.id, 'Bench Client ' || i.n, 18 + i.n %% 60, (array['female', 'male', 'non-binary'])[1 + i.n %% 3],
       case when i.n %% 2 = 0 then 'https://example.com/avatars/' || i.n || '.png' end,
       t.at, t.at
  from ids i
  cross join lateral (select now() - interval '1 hour' - i.n * interval '20 seconds' as at) t
"""

# A plain, logged table with a primary key, like clients, for the COPY reference.
COPY_TARGET = "bench_copy_target"
_COPY_TARGET_DDL = f"""
create table if not exists public.{COPY_TARGET} (
  id uuid primary key,
  name text,
  email text,
  age integer,
  gender_identity text,
  avatar_url text,
  updated_at timestamptz
)
"""

# Project A as the backfill finds it: no clients (sessions go with them: cascade), no conflicts, no watermark.
_EMPTY_PROJECT_A = "truncate public.clients, private.sync_conflicts, private.sync_state cascade"


def progress(message: str) -> None:
    print(f".. {message}", file=sys.stderr, flush=True)


def quiet_sync_logs() -> None:
    """BulkSync logs a line per page on stdout; the benchmark prints its table there."""
    logging.getLogger("client_sync").setLevel(logging.WARNING)


def fresh_projects(server_url: str) -> LocalProjects:
    return stack.fresh_projects(server_url, prefix=PREFIX)


def seed_project_b(projects: LocalProjects, count: int) -> None:
    """`count` Project B clients (auth.users and profiles) in one statement, then vacuum analyze."""
    with psycopg.connect(projects.project_b_url) as conn:
        conn.execute("set local session_replication_role = replica")
        conn.execute(_SEED, {"count": count})
    with psycopg.connect(projects.project_b_url, autocommit=True) as conn:
        conn.execute("vacuum analyze")
    with psycopg.connect(projects.project_a_url, autocommit=True) as conn:
        conn.execute(_COPY_TARGET_DDL)


def empty_project_a(projects: LocalProjects) -> None:
    """No clients in Project A (nor COPY rows), and a checkpoint so that no run pays for another's writes."""
    with psycopg.connect(projects.project_a_url, autocommit=True) as conn:
        conn.execute(_EMPTY_PROJECT_A)
        conn.execute(sql.SQL("truncate public.{}").format(sql.Identifier(COPY_TARGET)))
        conn.execute("checkpoint")


def settle_project_a(projects: LocalProjects) -> None:
    """Project A's clients vacuumed and analyzed, as autovacuum leaves them a while after a backfill."""
    with psycopg.connect(projects.project_a_url, autocommit=True) as conn:
        conn.execute("vacuum analyze public.clients")
        conn.execute("checkpoint")


def count_rows(url: str, table: str) -> int:
    schema, _, name = table.rpartition(".")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier(schema or "public", name))
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Urls:
    """Where the measured code connects: the functions' login (BulkSync, the design document's way) and the
    administrator (the COPY), direct or through proxies that add a round trip time."""

    functions_a: str
    functions_b: str
    admin_a: str
    admin_b: str


def measured_urls(projects: LocalProjects, stack: ExitStack, db_rtt_ms: float) -> Urls:
    if not db_rtt_ms:
        return Urls(
            projects.project_a_functions_url,
            projects.project_b_functions_url,
            projects.project_a_url,
            projects.project_b_url,
        )
    delay = db_rtt_ms / 1000

    def proxied(url: str) -> str:
        return stack.enter_context(RttProxy(url, delay_seconds=delay)).url()

    return Urls(
        proxied(projects.project_a_functions_url),
        proxied(projects.project_b_functions_url),
        proxied(projects.project_a_url),
        proxied(projects.project_b_url),
    )


def sync_settings(project_a_url: str, project_b_url: str) -> Settings:
    """sync_client's settings over these databases."""
    return Settings(
        project_a_db_url=project_a_url,
        project_b_db_url=project_b_url,
        function_timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
        sync_job_budget_seconds=JOB_BUDGET_SECONDS,
    )


@dataclass
class Split:
    """Seconds spent in each project's statement (as the caller sees it: round trip included)."""

    project_a: float = 0.0
    project_b: float = 0.0
    pages: int = 0


class TimedProjectA(PostgresProjectA):
    def __init__(self, settings: Settings, split: Split) -> None:
        super().__init__(settings)
        self.split = split

    def apply_sync_page(
        self, clients_json: str, absences_json: str, watermark: Watermark | None = None, *, dry_run: bool = False
    ) -> PageApplied:
        started = time.perf_counter()
        try:
            return super().apply_sync_page(clients_json, absences_json, watermark, dry_run=dry_run)
        finally:
            self.split.project_a += time.perf_counter() - started


class TimedProjectB(PostgresProjectB):
    def __init__(self, settings: Settings, split: Split) -> None:
        super().__init__(settings)
        self.split = split

    def read_client_page(self, after: UUID | None, limit: int, until: UUID | None = None) -> ClientPage:
        started = time.perf_counter()
        try:
            return super().read_client_page(after, limit, until)
        finally:
            self.split.project_b += time.perf_counter() - started
            self.split.pages += 1


# The floor of any set-based write: each page's rows mapped and inserted into clients by one bare INSERT ... SELECT,
# with none of the contract (no dedupe, version guard, ON CONFLICT, email or id conflict checks, bookkeeping).
_BARE_INSERT = """
insert into public.clients
  (id, full_name, email, notes, status, synced_from, source_attributes, source_updated_at, last_synced_at)
select s.id, m.full_name, m.email, m.notes, 'active', 'project_b', m.source_attributes, m.source_updated_at, now()
  from jsonb_to_recordset(%s::jsonb) as s (id uuid, profile jsonb, updated_at timestamptz)
  cross join lateral private.synced_columns(s.profile, s.updated_at) as m
"""


class BareInsertProjectA(TimedProjectA):
    """Project A whose page write is the bare INSERT (the floor case): an empty Project A only."""

    def apply_sync_page(
        self, clients_json: str, absences_json: str, watermark: Watermark | None = None, *, dry_run: bool = False
    ) -> PageApplied:
        started = time.perf_counter()
        try:
            with pooled_connection(self._pool()) as conn:
                inserted = conn.execute(_BARE_INSERT, (clients_json,)).rowcount
            return PageApplied(inserted=inserted)
        finally:
            self.split.project_a += time.perf_counter() - started


def bare_insert_sync(settings: Settings, split: Split) -> BulkSync:
    """BulkSync's pages (the same reads, read ahead the same way) written by the bare INSERT."""
    return BulkSync(BareInsertProjectA(settings, split), TimedProjectB(settings, split), settings)


def bulk_sync(settings: Settings, split: Split | None = None) -> BulkSync:
    """BulkSync over Postgres, as sync_client builds it (shared.wiring), its statements timed into `split`."""
    if split is None:
        return BulkSync(PostgresProjectA(settings), PostgresProjectB(settings), settings)
    return BulkSync(TimedProjectA(settings, split), TimedProjectB(settings, split), settings)


def machine() -> dict[str, str]:
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "machine": f"{nproc} CPUs (nproc), {cpu_model()}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def load_average() -> str:
    try:
        return " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "?"
