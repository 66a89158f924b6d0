"""A paged job run to its end, or until Ctrl-C or an error: the pages, the progress, the summary and the resume
command."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Generator
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ops.cli import ERROR, INTERRUPTED, OK
from ops.cli.errors import one_line
from ops.cli.progress import progress, stop_after_page, summary
from shared.bulk import PageDone
from shared.ports import OutcomeCounts

if TYPE_CHECKING:
    from rich.console import Console


@dataclass(frozen=True)
class PagedRun:
    """A paged job: `page_results` runs its pages from a cursor; `estimate` guesses the total rows from the next
    cursor and the rows done (None: unknown); `resume` is the command that goes on from a cursor."""

    mode: str
    dry_run: bool
    page_results: Callable[[str | None], Generator[PageDone, None, None]]
    estimate: Callable[[str | None, int], float | None]
    resume: Callable[[str | None], str]

    def run(self, cursor: str | None, out: Console, err: Console) -> int:
        """Page from `cursor`; the exit code."""
        total, pages, done = OutcomeCounts(), 0, 0
        failure: str | None = None
        interrupted = False
        started = time.monotonic()
        with (
            stop_after_page() as stop,
            progress(err, self.mode, stop) as bar,
            closing(self.page_results(cursor)) as results,
        ):
            try:
                for result in results:
                    pages += 1
                    total += result.applied
                    rows = sum(result.applied.counts().values())
                    done += rows
                    cursor = result.next_cursor
                    bar.page(done, self.estimate(cursor, done), cursor)
                    if not err.is_terminal:
                        err.print(f"{self.mode}: page {pages}, {done} rows, next cursor {cursor or '-'}", markup=False)
                    if cursor is None:
                        break
                    if stop.requested:
                        interrupted = True
                        break
            except KeyboardInterrupt:  # a second Ctrl-C, during a page: that page may or may not be applied
                interrupted = True
            except Exception as exc:
                failure = one_line(exc)
                if failure is None:
                    raise
        elapsed = time.monotonic() - started
        if pages or failure is None:
            stopped = interrupted or failure is not None
            out.print(summary(self.mode, total, pages, elapsed, dry_run=self.dry_run, stopped=stopped))
        if failure is not None:
            print(f"error: {failure}", file=sys.stderr)
        if interrupted or (failure is not None and pages):  # an error before any page: the same command again
            print(f"Resume with: {self.resume(cursor)}", file=sys.stderr)
        if failure is not None:
            return ERROR
        return INTERRUPTED if interrupted else OK
