"""What an operator sees of a paged run: Ctrl-C asking to stop after the page, the progress bar while it runs,
and the summary table after."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from shared.ports import OutcomeCounts

if TYPE_CHECKING:
    from rich.console import Console, Group


class StopRequest:
    requested = False


@contextmanager
def stop_after_page() -> Iterator[StopRequest]:
    """While inside, the first SIGINT (Ctrl-C) only asks to stop after the current page; the second one raises
    KeyboardInterrupt as usual. Outside the main thread (no signal handlers there) Ctrl-C is left as it is."""
    stop = StopRequest()

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


@dataclass(frozen=True)
class Bar:
    """`page(done, total, cursor)`: the rows done, the estimated total (None: unknown) and the next cursor."""

    page: Callable[[int, float | None, str | None], None]


@contextmanager
def progress(err: Console, mode: str, stop: StopRequest) -> Iterator[Bar]:
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

    bar = CursorProgress(
        SpinnerColumn(finished_text="done"),
        TextColumn("{task.description}"),
        BarColumn(),
        RowsColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        LeftColumn(),
        console=err,
    )
    task = bar.add_task(mode, total=None, rate=None, left=None)
    started = time.monotonic()

    def page(done: int, total: float | None, cursor: str | None) -> None:
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else None
        left = max(total - done, 0) / rate if rate and total is not None else None
        bar.cursor = cursor
        bar.update(task, completed=done, total=total, rate=rate, left=left)

    with bar:
        try:
            yield Bar(page)
        finally:
            bar.closing = True  # the last render shows where it stopped


def _clock(seconds: float) -> str:
    minutes, second = divmod(int(seconds + 0.5), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}"


def summary(mode: str, applied: OutcomeCounts, pages: int, elapsed: float, *, dry_run: bool, stopped: bool) -> Group:
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
