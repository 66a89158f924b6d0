"""The measured cases of the backfill benchmark, one run each: The backfill, the COPY reference, the
design document's way, and reconcile. Each answers how many rows it moved and how long it took, the sync's
statements timed per project."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from bench.stack import COPY_SHAPED, COPY_TARGET, Urls, count_rows
from devtools.localdb import LocalProjects
from shared.backfill import BackfillService
from shared.bulk import PageDone
from shared.config import Settings
from shared.ports import ClientPage, OutcomeCounts, RunMark, Watermark
from shared.reconcile import ReconcileService
from shared.stores.pools import get_pool, pooled_connection
from shared.stores.postgres import PostgresProjectA, PostgresProjectB

# sync_client's deployed settings (template.yaml, SyncClientFunction): a 120 s Timeout, 90 s per job; the
# statement timeouts, pool and retries are the defaults every function has.
FUNCTION_TIMEOUT_SECONDS = 120
JOB_BUDGET_SECONDS = 90.0


def quiet_sync_logs() -> None:
    """The backfill and reconcile log a line per page on stdout; the benchmark prints its table there."""
    logging.getLogger("client_sync").setLevel(logging.WARNING)


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
        self,
        clients_json: str,
        absences_json: str,
        watermark: Watermark | None = None,
        *,
        dry_run: bool = False,
        run: RunMark | None = None,
    ) -> OutcomeCounts:
        started = time.perf_counter()
        try:
            return super().apply_sync_page(clients_json, absences_json, watermark, dry_run=dry_run, run=run)
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
        self,
        clients_json: str,
        absences_json: str,
        watermark: Watermark | None = None,
        *,
        dry_run: bool = False,
        run: RunMark | None = None,
    ) -> OutcomeCounts:
        started = time.perf_counter()
        try:
            with pooled_connection(self._pool()) as conn:
                inserted = conn.execute(_BARE_INSERT, (clients_json,)).rowcount
            return OutcomeCounts(inserted=inserted)
        finally:
            self.split.project_a += time.perf_counter() - started


def bare_insert_backfill(settings: Settings, split: Split) -> BackfillService:
    """The backfill's pages (the same reads, read ahead the same way) written by the bare INSERT."""
    return BackfillService(BareInsertProjectA(settings, split), TimedProjectB(settings, split), settings)


def backfill_service(settings: Settings, split: Split | None = None) -> BackfillService:
    """The backfill over Postgres, as sync_client builds it (shared.wiring), its statements timed into `split`."""
    if split is None:
        return BackfillService(PostgresProjectA(settings), PostgresProjectB(settings), settings)
    return BackfillService(TimedProjectA(settings, split), TimedProjectB(settings, split), settings)


@dataclass(frozen=True)
class Run:
    """One measured run: rows moved in `seconds`, with what the statements took when they were timed."""

    rows: int
    seconds: float
    split: Split = field(default_factory=Split)
    applied: OutcomeCounts = field(default_factory=OutcomeCounts)

    @property
    def per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# The backfill as the CLI and the sharded jobs run it: backfill_pages of `limit`, each next page read while
# the one before is written; `one_by_one`: backfill_page after backfill_page (read, then write), as a caller of
# the HTTP mode pages; `bare_insert`: the same read-ahead pages written by the bare INSERT (the floor).


def backfill(settings: Settings, limit: int, *, one_by_one: bool = False, bare_insert: bool = False) -> Run:
    split = Split()
    bulk = bare_insert_backfill(settings, split) if bare_insert else backfill_service(settings, split)
    warm(bulk)
    total = OutcomeCounts()
    started = time.perf_counter()
    for result in _one_by_one(bulk, limit) if one_by_one else bulk.backfill_pages(None, limit):
        total += result.applied
    seconds = time.perf_counter() - started
    return Run(total.inserted, seconds, split, total)


def _one_by_one(bulk: BackfillService, limit: int) -> Iterator[PageDone]:
    cursor: str | None = None
    while True:
        result = bulk.backfill_page(cursor, limit)
        yield result
        if result.next_cursor is None:
            return
        cursor = result.next_cursor


def warm(bulk: BackfillService | ReconcileService) -> None:
    """Open both pools (a connection each, its session set up) outside the measured time."""
    bulk.project_a.reconcile_watermark()
    bulk.project_b.read_clients([])


# The physical reference: Project B's rows streamed by COPY into a table of Project A, in one statement each.

_COPY_OUT = (
    "copy (select p.id, p.name, u.email, p.age, p.gender_identity, p.avatar_url, p.updated_at"
    " from public.profiles p join auth.users u on u.id = p.id) to stdout"
)

# The same rows as Project A's clients columns (the common case of the sync's mapping, computed by Project B's
# query), for the references that write a table shaped like clients, and clients itself.
_CLIENT_COLUMNS = (
    "id, full_name, email, notes, status, synced_from, source_attributes, source_updated_at, last_synced_at"
)
_COPY_OUT_AS_CLIENTS = (
    "copy (select p.id, coalesce(nullif(btrim(p.name), ''), 'Unnamed client'), u.email, 'Synced from Project B.',"
    " 'active', 'project_b', jsonb_build_object('age', p.age, 'gender_identity', p.gender_identity,"
    " 'avatar_url', p.avatar_url), p.updated_at, now()"
    " from public.profiles p join auth.users u on u.id = p.id) to stdout"
)


def _stream(urls: Urls, copy_out: str, copy_in: sql.Composed) -> float:
    """Seconds to stream `copy_out` from Project B into `copy_in` in Project A, as the administrator."""
    with (
        psycopg.connect(urls.admin_b, autocommit=True) as source,
        psycopg.connect(urls.admin_a, autocommit=True) as sink,
    ):
        started = time.perf_counter()
        with source.cursor().copy(copy_out) as out, sink.cursor().copy(copy_in) as into:
            for data in out:
                into.write(data)
        return time.perf_counter() - started


def copy_reference(urls: Urls, projects: LocalProjects) -> Run:
    seconds = _stream(urls, _COPY_OUT, sql.SQL("copy public.{} from stdin").format(sql.Identifier(COPY_TARGET)))
    return Run(count_rows(projects.project_a_url, f"public.{COPY_TARGET}"), seconds)


def copy_as_clients(urls: Urls, projects: LocalProjects, *, into_clients: bool) -> Run:
    """The profiles, as clients' columns, COPYed into the table shaped like clients (the second reference) or, with
    `into_clients`, into public.clients itself: every index and check of it, none of the sync's rules."""
    table = "clients" if into_clients else COPY_SHAPED
    copy_in = sql.SQL("copy public.{} ({}) from stdin").format(sql.Identifier(table), sql.SQL(_CLIENT_COLUMNS))
    seconds = _stream(urls, _COPY_OUT_AS_CLIENTS, copy_in)
    return Run(count_rows(projects.project_a_url, f"public.{table}"), seconds)


# The design document's way: for each profile, check Project A, read the profile and then the email from Project B,
# insert the client into Project A; one autocommit statement each (bench/baseline_design_doc.py's SQL), the mapping
# in Python as the document has it.

_LIST_PROFILES = "select id from public.profiles order by id limit %s"
_CHECK_CLIENT = "select id from public.clients where id = %s"
_FETCH_PROFILE = (
    "select id, name, age, gender_identity, avatar_url, created_at, updated_at from public.profiles where id = %s"
)
_FETCH_EMAIL = "select email from auth.users where id = %s"
_INSERT_CLIENT = """
insert into public.clients
  (id, full_name, email, notes, therapist_id, status, synced_from,
   source_attributes, source_updated_at, last_synced_at)
values (%(id)s, %(full_name)s, %(email)s, %(notes)s, null, 'active', 'project_b',
        %(source_attributes)s, %(source_updated_at)s, now())
"""


def design_doc(settings: Settings, count: int) -> Run:
    assert settings.project_a_db_url is not None and settings.project_b_db_url is not None
    pool_a = get_pool("project_a", settings.project_a_db_url.get_secret_value(), settings)
    pool_b = get_pool("project_b", settings.project_b_db_url.get_secret_value(), settings)
    with pooled_connection(pool_a) as conn_a, pooled_connection(pool_b) as conn_b:
        started = time.perf_counter()
        ids = [row[0] for row in conn_b.execute(_LIST_PROFILES, (count,))]
        inserted = sum(_sync_one(conn_a, conn_b, client_id) for client_id in ids)
        seconds = time.perf_counter() - started
    return Run(inserted, seconds)


def _sync_one(conn_a: psycopg.Connection[Any], conn_b: psycopg.Connection[Any], client_id: UUID) -> int:
    if conn_a.execute(_CHECK_CLIENT, (client_id,)).fetchone() is not None:
        return 0
    profile = conn_b.cursor(row_factory=dict_row).execute(_FETCH_PROFILE, (client_id,)).fetchone()
    if profile is None:
        return 0
    user = conn_b.execute(_FETCH_EMAIL, (client_id,)).fetchone()
    try:
        conn_a.execute(_INSERT_CLIENT, _client_row(profile, user[0] if user else None))
    except psycopg.errors.UniqueViolation:
        return 0
    return 1


def _client_row(profile: dict[str, Any], email: str | None) -> dict[str, Any]:
    """The design document's mapping: same id, name, email, a note of what Project B knew."""
    attributes = {key: profile[key] for key in ("age", "gender_identity", "avatar_url")}
    details = [f"Age: {attributes['age']}"] if attributes["age"] is not None else []
    if attributes["gender_identity"]:
        details.append(f"Gender: {attributes['gender_identity']}")
    name = (profile["name"] or "").strip()
    return {
        "id": profile["id"],
        "full_name": name or "Unnamed client",
        "email": email.strip() if email and email.strip() else None,
        "notes": "Synced from Project B." + (" " + ", ".join(details) if details else ""),
        "source_attributes": Jsonb(attributes),
        "source_updated_at": profile["updated_at"],
    }


# Reconcile: pages from cursor None until None (changes since the watermark, then the open conflicts).


def reconcile(bulk: ReconcileService, limit: int) -> Run:
    total, cursor = OutcomeCounts(), None
    started = time.perf_counter()
    while True:
        result = bulk.reconcile_page(cursor, limit)
        total += result.applied
        cursor = result.next_cursor
        if cursor is None:
            break
    seconds = time.perf_counter() - started
    rows = total.inserted + total.updated + total.unchanged + total.archived + len(total.conflicts)
    return Run(rows, seconds, applied=total)


def reconcile_bulk(settings: Settings) -> ReconcileService:
    bulk = ReconcileService(PostgresProjectA(settings), PostgresProjectB(settings), settings)
    warm(bulk)
    return bulk
