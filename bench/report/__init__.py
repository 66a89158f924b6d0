"""What every bench's report shares: the header of a run, the bench's main, the Markdown table, and the writer of
the results into bench/README.md, between the bench's own two marker lines. Each bench's tables and verdict on its
issue's targets are in this package's module named after it."""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench.stack import progress

README = Path(__file__).resolve().parent.parent / "README.md"


# The writer: a run replaces the text between its two markers and nothing else.


class MissingResultsSection(LookupError):
    """The results file has no section for this bench (its two marker lines, once each, in order)."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- results:{name} -->", f"<!-- /results:{name} -->"


def _section_bounds(text: str, name: str, path: Path) -> tuple[int, int]:
    begin, end = markers(name)
    start, stop = text.find(begin), text.find(end)
    if text.count(begin) != 1 or text.count(end) != 1 or stop < start:
        raise MissingResultsSection(
            f"{path} needs the lines {begin} and {end}, once each and in this order: "
            f"{name}'s results are written between them"
        )
    return start + len(begin), stop


def _read(path: Path, name: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise MissingResultsSection(f"{path} does not exist: {name}'s results are written into it") from None


def check_section(name: str, path: Path = README) -> None:
    """Raises MissingResultsSection unless `path` has `name`'s section (checked before a run, not after)."""
    _section_bounds(_read(path, name), name, path)


def write_section(name: str, text: str, path: Path = README) -> Path:
    """`text` between `name`'s two markers in `path`, in place of what was there; the rest untouched."""
    current = _read(path, name)
    start, stop = _section_bounds(current, name, path)
    path.write_text(current[:start] + "\n" + text.strip("\n") + "\n" + current[stop:])
    return path


# A run's header and the bench's main.


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " / ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "?"


@dataclass(frozen=True)
class Header:
    """When, where and how a bench ran: the list above its tables."""

    postgres: str
    settings: str
    machine_note: str = ""  # after the machine, e.g. the load average
    server_note: str = ""  # after "same server for both projects", e.g. the server's settings
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    command: str = ""  # the run's command when it is not `python -m bench.<section name>`

    def lines(self, name: str) -> list[str]:
        nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        machine = f"{nproc} CPUs (nproc), {cpu_model()}, {platform.system()} {platform.release()}"
        return [
            f"- Date: {self.started:%Y-%m-%d %H:%M} UTC",
            f"- Machine: {machine}{self.machine_note}",
            f"- Python {platform.python_version()}, PostgreSQL {self.postgres} (same server for both projects"
            f"{self.server_note})",
            f"- {self.settings}",
            f"- Run: `make bench` (`.venv/bin/python -m {self.command or 'bench.' + name}`)",
        ]


@dataclass(frozen=True)
class Report:
    """What a bench run found: `body` (tables and verdict) printed and written, `details` written only, folded."""

    header: Header
    body: str
    details: str = ""
    details_title: str = ""
    print_header: bool = False

    def printed(self, name: str) -> str:
        return "\n".join([*self.header.lines(name), "", self.body]) if self.print_header else self.body

    def section(self, name: str) -> str:
        parts = [*self.header.lines(name), "", self.body.strip("\n")]
        if self.details:
            details = self.details.strip("\n")
            parts += ["", f"<details><summary>{self.details_title}</summary>", "", details, "", "</details>"]
        return "\n".join(parts)


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwinds through every `finally`: servers and consumers stopped, databases dropped


def run_bench(
    name: str,
    arguments: Callable[[list[str] | None], argparse.Namespace],
    measure: Callable[[argparse.Namespace], Report],
    argv: list[str] | None,
    *,
    path: Path = README,
) -> int:
    """A bench script's main: parse, stop cleanly on SIGTERM, measure, write the results (unless --no-write: the
    section is checked first, so a long run does not end on a missing one), print the tables."""
    args = arguments(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if not args.no_write:
            check_section(name, path)
        report = measure(args)
        if not args.no_write:
            progress(f"written to {write_section(name, report.section(name), path)}")
    except MissingResultsSection as exc:
        print(f"bench.{name}: {exc}", file=sys.stderr)
        return 2
    print(report.printed(name))
    return 0


def markdown_table(header: Sequence[str], align: str, rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; `align` has a letter per column, l(eft) or r(ight)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def trips_text(values: list[int]) -> str:
    """Round trips of several requests: the one value, or the median and the range; "-" for none counted."""
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{statistics.median(values):g} ({low}-{high})"


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"
