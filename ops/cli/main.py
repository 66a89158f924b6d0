"""The operators' command line: backfill, reconcile and the conflicts, against the configured databases.

    python -m shared.cli backfill [--limit N] [--dry-run] [--cursor C]
    python -m shared.cli reconcile [--full] [--dry-run] [--limit N] [--cursor C]
    python -m shared.cli conflicts [--all] [--limit N]

Settings come from the environment, as the functions get them (PROJECT_A_DB_URL and PROJECT_B_DB_URL: the
client_sync connection strings; shared/config.py). Backfill and reconcile page through shared.bulk.BulkSync
until it has nothing left, with a progress bar on stderr (rows, rows/s, time elapsed and left, the cursor) and a
summary table on stdout. Ctrl-C stops after the current page and prints the command that resumes from there
(exit 130); a second Ctrl-C stops at once. Exit codes: 0 done, 1 an error (one line on stderr), 2 a usage error,
130 interrupted.

rich is imported only here, and only when a command runs: the functions never import this module, and their
package (requirements.txt) does not have it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any
from uuid import UUID

from shared.bulk import UUID_SPACE, PageResult
from shared.config import MAX_PAGE_SIZE
from shared.errors import SyncError, TransientError
from shared.ports import Conflict, PageApplied

if TYPE_CHECKING:
    from rich.console import Console, Group

PROG = "python -m shared.cli"
OK, ERROR, USAGE, INTERRUPTED = 0, 1, 2, 130
# The largest page Project A's and Project B's SQL functions take (and sync_client's `limit`).
# shared.logs' logger (imported with shared.bulk above, so its handler is in place before main swaps it).
LOGGER = "client_sync"
# Wide enough for the conflicts table when the output is not a terminal (a file, a pipe, a test's capture).
PLAIN_WIDTH = 200


def main(argv: Sequence[str] | None = None, *, terminal: bool | None = None) -> int:
    """Run the command of `argv` (default sys.argv[1:]); the exit code. `terminal` forces rich's consoles to a
    terminal (True) or to plain text (False); None detects it."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage or the help
        return exit_.code if isinstance(exit_.code, int) else USAGE
    out, err = _consoles(terminal)
    try:
        with _logs_to_stderr(verbose=args.verbose):
            _check_settings()
            command: Callable[[argparse.Namespace, Console, Console], int] = args.run
            return command(args, out, err)
    except Exception as exc:
        message = _one_line(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return ERROR
    finally:
        from shared.stores.pools import close_pools

        close_pools()


# The commands.


def backfill(args: argparse.Namespace, out: Console, err: Console) -> int:
    from shared.wiring import bulk_sync

    bulk = bulk_sync()
    limit = args.limit or bulk.settings.sync_page_size
    start: str | None = args.cursor
    run = _Run(
        mode="backfill",
        dry_run=args.dry_run,
        page_results=lambda cursor: bulk.backfill_pages(cursor, limit, dry_run=args.dry_run),
        estimate=lambda cursor, done: _estimated_backfill_total(start, cursor, done),
        resume=lambda cursor: _resume_command("backfill", args, cursor),
    )
    return run.pages(start, out, err)


def reconcile(args: argparse.Namespace, out: Console, err: Console) -> int:
    from shared.wiring import bulk_sync

    bulk = bulk_sync()
    limit = args.limit or bulk.settings.sync_page_size
    run = _Run(
        mode="reconcile",
        dry_run=args.dry_run,
        page_results=lambda cursor: bulk.reconcile_pages(cursor, limit, dry_run=args.dry_run, full=args.full),
        # Reconcile's phases (changes, sweep, conflicts) have no total to read ahead: the bar is indeterminate.
        estimate=lambda cursor, done: float(done) if cursor is None else None,
        resume=lambda cursor: _resume_command("reconcile", args, cursor),
    )
    return run.pages(args.cursor, out, err)


def conflicts(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich import box
    from rich.table import Table

    from shared.wiring import projects

    project_a, _ = projects()
    found = project_a.conflicts(include_resolved=args.all, limit=args.limit)
    if not found:
        out.print("No conflicts." if args.all else "No open conflicts.", markup=False, highlight=False)
        return OK
    table = Table(box=box.SIMPLE_HEAD, title="Conflicts (all)" if args.all else "Open conflicts", title_justify="left")
    table.add_column("client id", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("other client id", no_wrap=True)
    table.add_column("first seen (UTC)", no_wrap=True)
    table.add_column("last seen (UTC)", no_wrap=True)
    table.add_column("resolved at (UTC)", no_wrap=True)
    for conflict in found:
        table.add_row(*_conflict_row(conflict))
    out.print(table)
    resolved = sum(1 for conflict in found if conflict.resolved_at is not None)
    line = f"{len(found)} conflicts: {len(found) - resolved} open, {resolved} resolved"
    if len(found) == args.limit:
        line += f" (the first {args.limit}; --limit for more)"
    out.print(line, markup=False, highlight=False)
    return OK


def _conflict_row(conflict: Conflict) -> tuple[str, str, str, str, str, str]:
    return (
        str(conflict.client_id),
        conflict.kind,
        str(conflict.other_client_id) if conflict.other_client_id else "-",
        _utc(conflict.first_seen),
        _utc(conflict.last_seen),
        _utc(conflict.resolved_at) if conflict.resolved_at else "-",
    )


# Paging with progress.


@dataclass(frozen=True)
class _Run:
    """A paged job: `page_results` runs its pages from a cursor; `estimate` guesses the total rows from the next
    cursor and the rows done (None: unknown); `resume` is the command that goes on from a cursor."""

    mode: str
    dry_run: bool
    page_results: Callable[[str | None], Generator[PageResult, None, None]]
    estimate: Callable[[str | None, int], float | None]
    resume: Callable[[str | None], str]

    def pages(self, cursor: str | None, out: Console, err: Console) -> int:
        total, pages, done = PageApplied(), 0, 0
        failure: str | None = None
        interrupted = False
        started = time.monotonic()
        with (
            _stop_after_page() as stop,
            _progress(err, self.mode, stop) as progress,
            closing(self.page_results(cursor)) as results,
        ):
            try:
                for result in results:
                    pages += 1
                    total += result.applied
                    rows = sum(result.applied.counts().values())
                    done += rows
                    cursor = result.next_cursor
                    progress.page(done, self.estimate(cursor, done), cursor)
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
                failure = _one_line(exc)
                if failure is None:
                    raise
        elapsed = time.monotonic() - started
        if pages or failure is None:
            stopped = interrupted or failure is not None
            out.print(_summary(self.mode, total, pages, elapsed, dry_run=self.dry_run, stopped=stopped))
        if failure is not None:
            print(f"error: {failure}", file=sys.stderr)
        if interrupted or (failure is not None and pages):  # an error before any page: the same command again
            print(f"Resume with: {self.resume(cursor)}", file=sys.stderr)
        if failure is not None:
            return ERROR
        return INTERRUPTED if interrupted else OK


def _estimated_backfill_total(start: str | None, cursor: str | None, done: int) -> float | None:
    """Rows in the whole backfill, estimated from how far its cursor (the last id written) is through the id space:
    Project B's ids are random (gen_random_uuid), so `done` rows over that fraction. None when it cannot tell.

    TODO(issue 8): the exact total once Project B has `public.client_count()` (the number of profiles, executable
    by service_role; asked for, not added here: this change adds no migration), read through a ProjectB method
    before the first page; then the bar has a true total and this estimate goes.
    """
    if cursor is None:
        return float(done)
    try:
        begin = UUID(start).int + 1 if start else 0
        fraction = (UUID(cursor).int + 1 - begin) / (UUID_SPACE - begin)
    except ValueError:  # cursors are opaque: one that is not an id gives no estimate
        return None
    if fraction <= 0 or done <= 0:
        return None
    return max(done / fraction, float(done))


class _StopRequest:
    requested = False


@contextmanager
def _stop_after_page() -> Iterator[_StopRequest]:
    """While inside, the first SIGINT (Ctrl-C) only asks to stop after the current page; the second one raises
    KeyboardInterrupt as usual. Outside the main thread (no signal handlers there) Ctrl-C is left as it is."""
    stop = _StopRequest()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True

    try:
        previous: Any = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def _progress(err: Console, mode: str, stop: _StopRequest) -> Iterator[_Bar]:
    """A rich progress bar on `err`: rows done (of the estimated total, when there is one), rows/s, time elapsed
    and left, and the next cursor on a line of its own. The rate is the run's average (a page at a time)."""
    from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class RowsColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            done = f"{int(task.completed):,}"
            if task.total is None or task.finished:
                return Text(f"{done} rows")
            return Text(f"{done} / ~{int(task.total):,} rows")

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            rate: float | None = task.fields["rate"]
            return Text(f"{rate:,.0f} rows/s" if rate else "- rows/s", style="progress.data.speed")

    class LeftColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            left: float | None = task.fields["left"]
            shown = _clock(left) if left is not None else "-:--:--"
            return Text(f"{shown} left", style="progress.remaining")

    class CursorProgress(Progress):
        cursor: str | None = None
        closing = False

        def get_renderables(self) -> Iterator[Any]:
            yield self.make_tasks_table(self.tasks)
            if stop.requested and not self.closing:
                yield Text("Stopping after this page (Ctrl-C again to stop now)", style="yellow")
            elif not self.finished or self.cursor is not None:
                yield Text(f"next cursor: {self.cursor or '-'}", style="dim")

    progress = CursorProgress(
        SpinnerColumn(finished_text="done"),
        TextColumn("{task.description}"),
        BarColumn(),
        RowsColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        LeftColumn(),
        console=err,
    )
    task = progress.add_task(mode, total=None, rate=None, left=None)
    started = time.monotonic()

    def page(done: int, total: float | None, cursor: str | None) -> None:
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else None
        left = max(total - done, 0) / rate if rate and total is not None else None
        progress.cursor = cursor
        progress.update(task, completed=done, total=total, rate=rate, left=left)

    with progress:
        try:
            yield _Bar(page)
        finally:
            progress.closing = True  # the last render shows where it stopped


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds + 0.5), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"


@dataclass(frozen=True)
class _Bar:
    page: Callable[[int, float | None, str | None], None]


def _summary(mode: str, applied: PageApplied, pages: int, elapsed: float, *, dry_run: bool, stopped: bool) -> Group:
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    title = f"{mode.capitalize()} summary"
    if dry_run:
        title += " (dry run: nothing written)"
    if stopped:
        title += " (stopped early)"
    counts = applied.counts()
    rows = sum(counts.values())
    table = Table(box=box.SIMPLE, show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for name, value in counts.items():
        table.add_row(name, str(value))
    table.add_row("rows", str(rows))
    table.add_row("pages", str(pages))
    table.add_row("rows/s", f"{rows / elapsed:.0f}" if elapsed > 0 else "-")
    table.add_row("elapsed", f"{elapsed:.1f} s")
    return Group(Text(title, style="bold"), table)


# Arguments, settings, consoles, logs, errors.


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show the sync's log lines (stderr)")
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Backfill, reconcile and the sync's conflicts, against PROJECT_A_DB_URL and PROJECT_B_DB_URL.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{backfill,reconcile,conflicts}")

    run = commands.add_parser("backfill", parents=[common], help="copy every Project B client to Project A")
    _page_options(run)
    run.add_argument("--cursor", metavar="C", help="go on after this cursor (printed by an interrupted run)")
    run.set_defaults(run=backfill)

    run = commands.add_parser(
        "reconcile", parents=[common], help="apply Project B's changes since the last reconcile, then retry conflicts"
    )
    run.add_argument("--full", action="store_true", help="also sweep Project A's synced clients for deletions")
    _page_options(run)
    run.add_argument("--cursor", metavar="C", help="go on from this cursor (printed by an interrupted run)")
    run.set_defaults(run=reconcile)

    run = commands.add_parser("conflicts", parents=[common], help="list the conflicts the sync remembers")
    run.add_argument("--all", action="store_true", help="resolved ones too (default: the open ones)")
    run.add_argument("--limit", type=_page_size, default=1000, metavar="N", help="at most N (default 1000)")
    run.set_defaults(run=conflicts)
    return parser


def _page_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=_page_size, metavar="N", help="clients per page (default SYNC_PAGE_SIZE)")
    parser.add_argument("--dry-run", action="store_true", help="apply each page in a transaction that is rolled back")


def _page_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_PAGE_SIZE}")
    return value


def _resume_command(mode: str, args: argparse.Namespace, cursor: str | None) -> str:
    words = [*PROG.split(), mode]
    if getattr(args, "full", False):
        words.append("--full")
    if args.dry_run:
        words.append("--dry-run")
    if args.limit:
        words += ["--limit", str(args.limit)]
    if cursor is not None:
        words += ["--cursor", cursor]
    return shlex.join(words)


def _check_settings() -> None:
    from shared.config import get_settings

    settings = get_settings()
    missing = [
        name
        for name, value in (
            ("PROJECT_A_DB_URL", settings.project_a_db_url),
            ("PROJECT_B_DB_URL", settings.project_b_db_url),
        )
        if value is None
    ]
    if missing:
        raise _SettingsMissing(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
            "(the client_sync connection strings, as the functions get them)"
        )


class _SettingsMissing(Exception):
    pass


def _consoles(terminal: bool | None) -> tuple[Console, Console]:
    """stdout for the tables, stderr for the progress; plain text, wide enough, when not a terminal."""
    from rich.console import Console

    consoles = Console(file=sys.stdout, force_terminal=terminal), Console(file=sys.stderr, force_terminal=terminal)
    for console in consoles:
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console.width = PLAIN_WIDTH
    return consoles


class _StderrHandler(logging.StreamHandler[Any]):
    """Writes to whatever sys.stderr is at the time (rich's progress bar swaps it to print above the bar)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


@contextmanager
def _logs_to_stderr(*, verbose: bool) -> Iterator[None]:
    """The sync's JSON log lines go to stderr, not among the tables: its warnings (conflicts), or all with -v.
    psycopg_pool's warnings (each failed connection attempt) only with -v: the error line names the cause."""
    logger, pool_logger = logging.getLogger(LOGGER), logging.getLogger("psycopg.pool")
    handlers, level, pool_level = list(logger.handlers), logger.level, pool_logger.level
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    for previous in handlers:
        logger.removeHandler(previous)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    pool_logger.setLevel(logging.NOTSET if verbose else logging.ERROR)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        for previous in handlers:
            logger.addHandler(previous)
        logger.setLevel(level)
        pool_logger.setLevel(pool_level)


def _one_line(exc: BaseException) -> str | None:
    """The message of an error an operator can act on, on one line; None for anything else (a bug: traceback)."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        problems = [
            ": ".join(filter(None, [".".join(map(str, e["loc"])).upper(), e["msg"].removeprefix("Value error, ")]))
            for e in exc.errors()
        ]
        return "invalid settings: " + "; ".join(problems)
    if isinstance(exc, _SettingsMissing):
        return str(exc)
    if isinstance(exc, SyncError):
        cause = _root_cause(exc)
        return exc.message if cause is exc else f"{exc.message} ({_described(cause)})"
    if isinstance(exc, TransientError) or type(exc).__module__.startswith("psycopg"):
        return _described(_root_cause(exc))
    return None


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _described(exc: BaseException) -> str:
    """`Type: message`, on one line. Of a server's error only its primary message: the detail (`Key (email)=...`,
    `Failing row contains ...`) can quote a patient's data."""
    primary = getattr(getattr(exc, "diag", None), "message_primary", None)
    text = " ".join(str(primary or exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    sys.exit(main())
