"""Backfill and reconcile in pages: one query to Project B and one statement to Project A per page, the page
passed through as JSON text (never a round trip, nor a parse, per client). sync_client and the CLI call this.

Cursors are opaque strings to callers: a backfill's is the last id written; a reconcile's names its phase
(`changes:<version>|<id>`, `sweep:<id>`, `conflicts:<id>`). A page or a job run twice changes nothing more.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from shared.config import Settings
from shared.errors import InvalidRequest, UpstreamUnavailable
from shared.logs import log_event
from shared.models import BackfillRange
from shared.ports import ClientPage, PageApplied, ProjectA, ProjectB, SourceState, Watermark
from shared.sync import log_applied

if TYPE_CHECKING:
    from shared.stores.retry_queue import RetryQueue

UUID_SPACE = 1 << 128
ZERO_ID = UUID(int=0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PageResult:
    """One page done: what it did, and where the next one starts (None: nothing left)."""

    applied: PageApplied
    next_cursor: str | None


class BulkSync:
    """Backfill, reconcile and the sharded backfill's jobs."""

    def __init__(
        self, project_a: ProjectA, project_b: ProjectB, settings: Settings, queue: RetryQueue | None = None
    ) -> None:
        self.project_a = project_a
        self.project_b = project_b
        self.settings = settings
        self.queue = queue

    # Backfill: every Project B profile, by id.

    def backfill_page(
        self, cursor: str | None, limit: int, *, dry_run: bool = False, until: UUID | None = None
    ) -> PageResult:
        page = self.project_b.read_client_page(_id_cursor(cursor), limit, until)
        return self._apply_backfill_page(page, limit, until, dry_run)

    def backfill_pages(
        self, cursor: str | None, limit: int, *, dry_run: bool = False, until: UUID | None = None
    ) -> Generator[PageResult, None, None]:
        """backfill_page after backfill_page to the end (or `until`), Project B's next page read while Project A
        writes this one. Pages are yielded in order, each once written: a cursor never passes an unwritten page,
        and a page read ahead and not written when the caller stops is only a read."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="client_page") as reader:

            def read(after: UUID | None) -> Future[ClientPage]:
                run_here = contextvars.copy_context().run
                return reader.submit(run_here, self.project_b.read_client_page, after, limit, until)

            upcoming = read(_id_cursor(cursor))
            while True:
                page = upcoming.result()
                if _more(page, limit, until):
                    upcoming = read(page.last_id)
                result = self._apply_backfill_page(page, limit, until, dry_run)
                yield result
                if result.next_cursor is None:
                    return

    def _apply_backfill_page(self, page: ClientPage, limit: int, until: UUID | None, dry_run: bool) -> PageResult:
        applied = PageApplied()
        if page.count:
            applied = self.project_a.apply_sync_page(page.clients_json, "[]", dry_run=dry_run)
        return self._done(applied, str(page.last_id) if _more(page, limit, until) else None, "backfill", dry_run)

    def queue_backfill(self, shards: int) -> int:
        """Split the id space into `shards` ranges and queue one job per range; how many were queued."""
        jobs = [job.model_dump_json() for job in shard_ranges(shards)]
        queued = self._job_queue().send_batch(jobs, source="sync_client", reason="backfill_range")
        log_event("backfill_queued", count=queued)
        return queued

    def run_range(self, job: BackfillRange, deadline: float) -> tuple[PageApplied, BackfillRange | None]:
        """Page through `job` until its range is done (None) or `deadline` (monotonic) is near: then the rest."""
        total = PageApplied()
        cursor = str(job.cursor) if job.cursor else _before(job.start)
        for result in self.backfill_pages(cursor, self.settings.sync_page_size, until=job.end):
            total += result.applied
            if result.next_cursor is not None and time.monotonic() >= deadline:
                return total, job.model_copy(update={"cursor": UUID(result.next_cursor)})
        return total, None

    def requeue(self, job: BackfillRange) -> None:
        self._job_queue().send(job.model_dump_json(), source="sync_client", reason="backfill_range")

    def _job_queue(self) -> RetryQueue:
        if self.queue is None:
            raise UpstreamUnavailable("No queue is configured for backfill jobs (SYNC_RETRY_QUEUE_URL)")
        return self.queue

    # Reconcile: Project B's changes since the watermark, deletions included; a full one also sweeps Project
    # A's synced clients for profiles that are gone; then the open conflicts are tried again.

    def reconcile_page(
        self, cursor: str | None, limit: int, *, dry_run: bool = False, full: bool = False
    ) -> PageResult:
        phase, position = _reconcile_cursor(cursor)
        if phase == "changes":
            since = _watermark_cursor(position) if position else self._reconcile_start()
            changes = self.project_b.read_changes(since, limit)
            applied = PageApplied()
            if changes.count:
                applied = self.project_a.apply_sync_page(
                    changes.clients_json, changes.absences_json, changes.last, dry_run=dry_run
                )
            if changes.count == limit and changes.last is not None:
                next_cursor: str | None = f"changes:{changes.last.version.isoformat()}|{changes.last.client_id}"
            else:
                next_cursor = "sweep:" if full else "conflicts"
        elif phase == "sweep":
            ids = self.project_a.synced_client_ids(UUID(position) if position else None, limit)
            states = self.project_b.read_clients(ids) if ids else []
            applied = self._apply_states(states, dry_run)
            next_cursor = f"sweep:{ids[-1]}" if len(ids) == limit else "conflicts"
        else:
            ids = self.project_a.open_conflict_ids(UUID(position) if position else None, limit)
            states = self.project_b.read_clients(ids) if ids else []
            applied = self._apply_states(states, dry_run)
            next_cursor = f"conflicts:{ids[-1]}" if len(ids) == limit else None
        return self._done(applied, next_cursor, "reconcile", dry_run)

    def reconcile_until(self, deadline: float, *, full: bool = False) -> tuple[PageApplied, str | None]:
        """Reconcile page after page until done or `deadline` (monotonic); the cursor left, if any."""
        total, cursor = PageApplied(), None
        for result in self.reconcile_pages(None, self.settings.sync_page_size, full=full):
            total += result.applied
            cursor = result.next_cursor
            if cursor is not None and time.monotonic() >= deadline:
                break
        return total, cursor

    def _reconcile_start(self) -> Watermark:
        """The watermark less the overlap: a change stamped before another that committed first is not missed."""
        watermark = self.project_a.reconcile_watermark()
        if watermark is None:
            return Watermark(EPOCH, ZERO_ID)
        overlap = timedelta(seconds=self.settings.reconcile_overlap_seconds)
        return Watermark(watermark.version - overlap, ZERO_ID)

    def _apply_states(self, states: Sequence[SourceState], dry_run: bool) -> PageApplied:
        clients = [state.client.model_dump(mode="json") for state in states if state.client is not None]
        absences = [state.absence.as_json() for state in states if state.absence is not None]
        if not clients and not absences:
            return PageApplied()
        return self.project_a.apply_sync_page(json.dumps(clients), json.dumps(absences), dry_run=dry_run)

    def reconcile_pages(
        self, cursor: str | None, limit: int, *, dry_run: bool = False, full: bool = False
    ) -> Generator[PageResult, None, None]:
        """reconcile_page after reconcile_page until its last phase is done."""
        while True:
            result = self.reconcile_page(cursor, limit, dry_run=dry_run, full=full)
            yield result
            if result.next_cursor is None:
                return
            cursor = result.next_cursor

    @staticmethod
    def _done(applied: PageApplied, next_cursor: str | None, mode: str, dry_run: bool) -> PageResult:
        if not dry_run:
            log_applied(applied.conflicts)
        log_event("sync_page_applied", logging.INFO, mode=mode, dry_run=dry_run, **applied.counts())
        return PageResult(applied, next_cursor)


def shard_ranges(shards: int) -> list[BackfillRange]:
    """`shards` ranges that cover the id space, in order, without gaps or overlaps."""
    bounds = [UUID_SPACE * index // shards for index in range(shards + 1)]
    return [
        BackfillRange(kind="backfill_range", start=UUID(int=bounds[i]), end=UUID(int=bounds[i + 1] - 1))
        for i in range(shards)
    ]


def _more(page: ClientPage, limit: int, until: UUID | None) -> bool:
    """Whether a backfill goes on after `page`: it was full and did not end at `until`."""
    return page.count == limit and page.last_id is not None and page.last_id != until


def _before(start: UUID) -> str | None:
    """The cursor that starts a page at `start` (cursors are exclusive)."""
    return str(UUID(int=start.int - 1)) if start.int else None


def _id_cursor(cursor: str | None) -> UUID | None:
    if cursor is None:
        return None
    try:
        return UUID(cursor)
    except ValueError:
        raise InvalidRequest("cursor: not a cursor of this backfill", fields=["cursor"]) from None


def _reconcile_cursor(cursor: str | None) -> tuple[str, str]:
    if cursor is None:
        return "changes", ""
    phase, _, position = cursor.partition(":")
    if phase in ("changes", "sweep", "conflicts"):
        try:
            if phase == "changes" and position:
                _watermark_cursor(position)
            if phase in ("sweep", "conflicts") and position:
                UUID(position)
            return phase, position
        except ValueError:
            pass
    raise InvalidRequest("cursor: not a cursor of this reconcile", fields=["cursor"])


def _watermark_cursor(position: str) -> Watermark:
    version, _, client_id = position.partition("|")
    parsed = datetime.fromisoformat(version)
    if parsed.tzinfo is None:
        raise ValueError("a cursor's time has an offset")
    return Watermark(parsed, UUID(client_id))
