"""Backfill: every Project B profile copied to Project A, by id, a page at a time (shared/bulk.py); or the id
space split into ranges, one queued job per range, each paging through its range.

A backfill's cursor is the last id written.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING
from uuid import UUID

from shared.bulk import PageDone, page_done
from shared.config import Settings
from shared.errors import InvalidRequest, QueueNotConfigured
from shared.logs import log_event
from shared.models import BackfillRange
from shared.ports import ClientPage, OutcomeCounts, ProjectA, ProjectB, RunMark

if TYPE_CHECKING:
    from shared.stores.retry_queue import RetryQueue

UUID_SPACE = 1 << 128


class BackfillService:
    """A backfill's pages, and the sharded backfill's jobs."""

    def __init__(
        self, project_a: ProjectA, project_b: ProjectB, settings: Settings, queue: RetryQueue | None = None
    ) -> None:
        self.project_a = project_a
        self.project_b = project_b
        self.settings = settings
        self.queue = queue

    def backfill_page(
        self, cursor: str | None, limit: int, *, dry_run: bool = False, until: UUID | None = None
    ) -> PageDone:
        page = self.project_b.read_client_page(_id_cursor(cursor), limit, until)
        return self._apply(page, limit, until, dry_run, new_run=cursor is None and until is None)

    def backfill_pages(
        self, cursor: str | None, limit: int, *, dry_run: bool = False, until: UUID | None = None
    ) -> Generator[PageDone, None, None]:
        """backfill_page after backfill_page to the end (or `until`), Project B's next page read while Project A
        writes this one. Pages are yielded in order, each once written: a cursor never passes an unwritten page,
        and a page read ahead and not written when the caller stops is only a read."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="client_page") as reader:

            def read(after: UUID | None) -> Future[ClientPage]:
                run_here = contextvars.copy_context().run
                return reader.submit(run_here, self.project_b.read_client_page, after, limit, until)

            upcoming = read(_id_cursor(cursor))
            new_run = cursor is None and until is None
            while True:
                page = upcoming.result()
                if _more(page, limit, until):
                    upcoming = read(page.last_id)
                done = self._apply(page, limit, until, dry_run, new_run=new_run)
                new_run = False
                yield done
                if done.next_cursor is None:
                    return

    def _apply(self, page: ClientPage, limit: int, until: UUID | None, dry_run: bool, *, new_run: bool) -> PageDone:
        """Write the page, and what it did to its run (the status: a backfill from the start begins one; its last
        page, or a range's, ends it); a page with nothing to write is written only for what it starts or ends."""
        more = _more(page, limit, until)
        run = None if dry_run else RunMark("backfill", new_run=new_run, finished=not more)
        applied = OutcomeCounts()
        if page.count or (run is not None and run.worth_a_call):
            applied = self.project_a.apply_sync_page(page.clients_json, "[]", dry_run=dry_run, run=run)
        return page_done(applied, str(page.last_id) if more else None, "backfill", dry_run)

    # The sharded backfill: one job per range of ids, on the queue.

    def queue_backfill(self, shards: int) -> int:
        """Split the id space into `shards` ranges and queue one job per range; how many were queued."""
        queue = self._job_queue()  # before the run is recorded: without a queue, nothing is written
        jobs = [job.model_dump_json() for job in shard_ranges(shards)]
        start = RunMark("backfill", new_run=True, finished=False, parts=shards)  # each range ends one part
        self.project_a.apply_sync_page("[]", "[]", run=start)
        queued = queue.send_batch(jobs, source="sync_client", reason="backfill_range")
        log_event("backfill_queued", count=queued)
        return queued

    def run_range(self, job: BackfillRange, deadline: float) -> tuple[OutcomeCounts, BackfillRange | None]:
        """Page through `job` until its range is done (None) or `deadline` (monotonic) is near: then the rest."""
        total = OutcomeCounts()
        cursor = str(job.cursor) if job.cursor else _before(job.start)
        for done in self.backfill_pages(cursor, self.settings.sync_page_size, until=job.end):
            total += done.applied
            if done.next_cursor is not None and time.monotonic() >= deadline:
                return total, job.model_copy(update={"cursor": UUID(done.next_cursor)})
        return total, None

    def requeue(self, job: BackfillRange) -> None:
        self._job_queue().send(job.model_dump_json(), source="sync_client", reason="backfill_range")

    def _job_queue(self) -> RetryQueue:
        if self.queue is None:
            raise QueueNotConfigured("A sharded backfill needs the queue (SYNC_RETRY_QUEUE_URL): page it instead")
        return self.queue


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
