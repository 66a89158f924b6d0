"""The benchmark's Markdown table, its verdict on the issue's targets, and the results file."""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench.load import LoadResult
from bench.roundtrips import RoundTripReport

RESULTS_FILE = Path(__file__).resolve().parent / "results" / "create_session.md"
TARGET_ROUND_TRIPS_A = 1
TARGET_SPEEDUP = 1.5


@dataclass(frozen=True)
class Measurement:
    """Everything measured for one implementation."""

    round_trips: RoundTripReport
    synced: LoadResult
    first_sync: LoadResult


@dataclass(frozen=True)
class Row:
    metric: str
    baseline: float
    create_session: float
    shown: tuple[str, str]


def _rt(values: list[int]) -> tuple[float, str]:
    median = statistics.median(values)
    low, high = min(values), max(values)
    return median, (f"{low}" if low == high else f"{median:g} ({low}-{high})")


def _rows(baseline: Measurement, ours: Measurement, callers: int) -> list[Row]:
    rows = []
    for case, label in (("synced", "client already synced"), ("first_sync", "first sync")):
        for project in ("project_a", "project_b"):
            b_value, b_text = _rt(getattr(getattr(baseline.round_trips, case), project))
            o_value, o_text = _rt(getattr(getattr(ours.round_trips, case), project))
            name = "Project A" if project == "project_a" else "Project B"
            rows.append(Row(f"Round trips to {name} per request, {label}", b_value, o_value, (b_text, o_text)))
    for case, label in (("synced", "client already synced"), ("first_sync", "first sync")):
        b_load: LoadResult = getattr(baseline, case)
        o_load: LoadResult = getattr(ours, case)
        rows.append(
            Row(
                f"Requests/s, {callers} callers, {label}",
                b_load.per_second,
                o_load.per_second,
                (f"{b_load.per_second:.0f}", f"{o_load.per_second:.0f}"),
            )
        )
        for pct in (50, 95):
            b_ms, o_ms = b_load.percentile_ms(pct), o_load.percentile_ms(pct)
            rows.append(Row(f"p{pct} latency (ms), {label}", b_ms, o_ms, (f"{b_ms:.1f}", f"{o_ms:.1f}")))
        rows.append(
            Row(
                f"Requests measured / failed, {label}",
                b_load.requests,
                o_load.requests,
                (f"{b_load.requests} / {b_load.errors}", f"{o_load.requests} / {o_load.errors}"),
            )
        )
    return rows


def _ratio(row: Row) -> str:
    if row.metric.startswith("Requests measured"):
        return ""
    if row.baseline == 0:
        return "-" if row.create_session == 0 else "inf"
    return f"{row.create_session / row.baseline:.2f}x"


def table(baseline: Measurement, ours: Measurement, callers: int) -> str:
    lines = [
        "| Metric | Design document baseline | create_session | Ratio (create_session ÷ baseline) |",
        "|---|---:|---:|---:|",
    ]
    for row in _rows(baseline, ours, callers):
        lines.append(f"| {row.metric} | {row.shown[0]} | {row.shown[1]} | {_ratio(row)} |")
    return "\n".join(lines)


def verdict(baseline: Measurement, ours: Measurement) -> str:
    """One line on the issue's targets: 1 round trip to Project A (synced) and >= 1.5x the throughput."""
    synced_a = max(ours.round_trips.synced.project_a)
    parts = [
        f"1 round trip to Project A for a synced client: {synced_a} -> {_met(synced_a <= TARGET_ROUND_TRIPS_A)}",
    ]
    for case, label in (("synced", "synced client"), ("first_sync", "first sync")):
        b_rate, o_rate = getattr(baseline, case).per_second, getattr(ours, case).per_second
        speedup = o_rate / b_rate if b_rate else 0.0
        parts.append(f">= {TARGET_SPEEDUP:g}x throughput, {label}: {speedup:.2f}x -> {_met(speedup >= TARGET_SPEEDUP)}")
    failures = [
        name
        for name, measurement in (("baseline", baseline), ("create_session", ours))
        for load in (measurement.synced, measurement.first_sync)
        if load.errors or load.exhausted
    ]
    line = "Targets: " + "; ".join(parts) + "."
    if failures:
        line += " Caution: failed requests or too few seeded clients in: " + ", ".join(sorted(set(failures))) + "."
    opened = sum(
        trips.new_connections
        for measurement in (baseline, ours)
        for trips in (measurement.round_trips.synced, measurement.round_trips.first_sync)
    )
    if opened:
        line += f" Caution: {opened} database connections were opened while round trips were counted."
    return line


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_results(
    text: str,
    *,
    postgres: str,
    settings: str,
    path: Path = RESULTS_FILE,
    name: str = "create_session",
) -> Path:
    """The results file of bench/<name>.py: date, machine, settings, then the table and the verdict."""
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    header = [
        f"# {name} benchmark",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {nproc} CPUs (nproc), {cpu_model()}, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, PostgreSQL {postgres} (same server for both projects)",
        f"- {settings}",
        f"- Run: `make bench` (`.venv/bin/python -m bench.{name}`)",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(header) + "\n" + text)
    return path


def progress(message: str) -> None:
    print(f".. {message}", file=sys.stderr, flush=True)


def _exit_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwinds through every `finally`, so servers and databases are cleaned up


def run_bench(
    arguments: Callable[[list[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], str],
    argv: list[str] | None,
) -> int:
    """A bench script's main: parse, stop cleanly on SIGTERM, print the table."""
    args = arguments(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    print(run(args))
    return 0
