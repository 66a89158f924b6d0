"""Reconcile, a page at a time (shared/bulk.py), in three phases: Project B's changes since the watermark,
deletions included; with `full`, a sweep of Project A's synced clients for profiles that are gone; then the open
conflicts, tried again.

A reconcile's cursor names its phase and where in it the next page starts: ReconcileCursor, parsed once from
the text callers pass back (`changes:<version>|<id>`, `sweep:<id>`, `conflicts:<id>`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from shared.bulk import PageDone, page_done
from shared.config import Settings
from shared.errors import InvalidRequest
from shared.ports import OutcomeCounts, ProjectA, ProjectB, RunMark, SourceState, Watermark

ZERO_ID = UUID(int=0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A page's mark for its run, given whether the run ends with it; None for a dry run (nothing is recorded).
_Mark = Callable[[bool], RunMark] | None


@dataclass(frozen=True)
class ChangesCursor:
    """Project B's changes after `after`; None: from Project A's watermark, less the overlap."""

    after: Watermark | None = None

    def __str__(self) -> str:
        if self.after is None:
            return "changes:"
        return f"changes:{self.after.version.isoformat()}|{self.after.client_id}"


@dataclass(frozen=True)
class SweepCursor:
    """Project A's synced clients after the id `after` (None: from the first)."""

    after: UUID | None = None

    def __str__(self) -> str:
        return f"sweep:{self.after or ''}"


@dataclass(frozen=True)
class ConflictsCursor:
    """The open conflicts after the client id `after` (None: from the first)."""

    after: UUID | None = None

    def __str__(self) -> str:
        return f"conflicts:{self.after}" if self.after else "conflicts"


ReconcileCursor = ChangesCursor | SweepCursor | ConflictsCursor


def parse_reconcile_cursor(text: str | None) -> ReconcileCursor:
    """The cursor `text` names (None: the start); InvalidRequest for anything a reconcile did not give out."""
    if text is None:
        return ChangesCursor()
    phase, _, position = text.partition(":")
    try:
        if phase == "changes":
            return ChangesCursor(_watermark(position) if position else None)
        if phase == "sweep":
            return SweepCursor(UUID(position) if position else None)
        if phase == "conflicts":
            return ConflictsCursor(UUID(position) if position else None)
    except ValueError:
        pass
    raise InvalidRequest("cursor: not a cursor of this reconcile", fields=["cursor"])


def _watermark(position: str) -> Watermark:
    version, _, client_id = position.partition("|")
    parsed = datetime.fromisoformat(version)
    if parsed.tzinfo is None:
        raise ValueError("a cursor's time has an offset")
    return Watermark(parsed, UUID(client_id))


class ReconcileService:
    """Reconcile's pages: each one page of its current phase."""

    def __init__(self, project_a: ProjectA, project_b: ProjectB, settings: Settings) -> None:
        self.project_a = project_a
        self.project_b = project_b
        self.settings = settings

    def reconcile_page(self, cursor: str | None, limit: int, *, dry_run: bool = False, full: bool = False) -> PageDone:
        done, _ = self._page(parse_reconcile_cursor(cursor), limit, dry_run, full, new_run=cursor is None)
        return done

    def reconcile_pages(
        self, cursor: str | None, limit: int, *, dry_run: bool = False, full: bool = False
    ) -> Generator[PageDone, None, None]:
        """reconcile_page after reconcile_page until its last phase is done."""
        position: ReconcileCursor | None = parse_reconcile_cursor(cursor)
        new_run = cursor is None
        while position is not None:
            done, position = self._page(position, limit, dry_run, full, new_run=new_run)
            new_run = False
            yield done

    def reconcile_until(self, deadline: float, *, full: bool = False) -> tuple[OutcomeCounts, str | None]:
        """Reconcile page after page until done or `deadline` (monotonic); the cursor left, if any."""
        total, cursor = OutcomeCounts(), None
        for done in self.reconcile_pages(None, self.settings.sync_page_size, full=full):
            total += done.applied
            cursor = done.next_cursor
            if cursor is not None and time.monotonic() >= deadline:
                break
        return total, cursor

    def waiting_seconds(self) -> float:
        """How long the oldest change of Project B after the watermark has waited: 0 when none waits (a reconcile
        that stopped at its deadline leaves some)."""
        watermark = self.project_a.reconcile_watermark()
        waiting = self.project_b.read_changes(watermark or Watermark(EPOCH, ZERO_ID), 1)
        if not waiting.count or waiting.last is None:
            return 0.0
        return round(max((datetime.now(UTC) - waiting.last.version).total_seconds(), 0.0), 3)

    def _page(
        self, position: ReconcileCursor, limit: int, dry_run: bool, full: bool, *, new_run: bool
    ) -> tuple[PageDone, ReconcileCursor | None]:
        """One page of the current phase, written with what it did to its run (the status: a reconcile from the
        start begins one, its last page ends it)."""
        following: ReconcileCursor | None
        mark = None if dry_run else (lambda finished: RunMark("reconcile", new_run=new_run, finished=finished))
        if isinstance(position, ChangesCursor):
            applied, following = self._changes(position, limit, dry_run, full, mark)
        elif isinstance(position, SweepCursor):
            applied, following = self._sweep(position, limit, dry_run, mark)
        else:
            applied, following = self._open_conflicts(position, limit, dry_run, mark)
        next_cursor = str(following) if following is not None else None
        return page_done(applied, next_cursor, "reconcile", dry_run), following

    def _changes(
        self, position: ChangesCursor, limit: int, dry_run: bool, full: bool, mark: _Mark
    ) -> tuple[OutcomeCounts, ReconcileCursor]:
        since = position.after if position.after is not None else self._start()
        changes = self.project_b.read_changes(since, limit)
        following: ReconcileCursor = SweepCursor() if full else ConflictsCursor()
        if changes.count == limit and changes.last is not None:
            following = ChangesCursor(changes.last)
        run = mark(False) if mark else None
        applied = OutcomeCounts()
        if changes.count or (run is not None and run.worth_a_call):
            applied = self.project_a.apply_sync_page(
                changes.clients_json, changes.absences_json, changes.last, dry_run=dry_run, run=run
            )
        return applied, following

    def _sweep(
        self, position: SweepCursor, limit: int, dry_run: bool, mark: _Mark
    ) -> tuple[OutcomeCounts, ReconcileCursor]:
        ids = self.project_a.synced_client_ids(position.after, limit)
        run = mark(False) if mark else None
        applied = self._apply_states(self.project_b.read_clients(ids) if ids else [], dry_run, run)
        return applied, SweepCursor(ids[-1]) if len(ids) == limit else ConflictsCursor()

    def _open_conflicts(
        self, position: ConflictsCursor, limit: int, dry_run: bool, mark: _Mark
    ) -> tuple[OutcomeCounts, ConflictsCursor | None]:
        ids = self.project_a.open_conflict_ids(position.after, limit)
        following = ConflictsCursor(ids[-1]) if len(ids) == limit else None
        run = mark(following is None) if mark else None
        applied = self._apply_states(self.project_b.read_clients(ids) if ids else [], dry_run, run)
        return applied, following

    def _start(self) -> Watermark:
        """The watermark less the overlap: a change stamped before another that committed first is not missed."""
        watermark = self.project_a.reconcile_watermark()
        if watermark is None:
            return Watermark(EPOCH, ZERO_ID)
        overlap = timedelta(seconds=self.settings.reconcile_overlap_seconds)
        return Watermark(watermark.version - overlap, ZERO_ID)

    def _apply_states(self, states: Sequence[SourceState], dry_run: bool, run: RunMark | None) -> OutcomeCounts:
        clients = [state.client.model_dump(mode="json") for state in states if state.client is not None]
        absences = [state.absence.as_json() for state in states if state.absence is not None]
        if not clients and not absences and not (run is not None and run.worth_a_call):
            return OutcomeCounts()
        return self.project_a.apply_sync_page(json.dumps(clients), json.dumps(absences), dry_run=dry_run, run=run)
