"""The commands: backfill and reconcile (paged, ops/cli/paging.py), and the conflicts' table."""

from __future__ import annotations

import argparse
import shlex
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from ops.cli import OK, PROG
from ops.cli.paging import PagedRun
from shared.backfill import UUID_SPACE
from shared.ports import Conflict

if TYPE_CHECKING:
    from rich.console import Console


def backfill(args: argparse.Namespace, out: Console, err: Console) -> int:
    from shared.wiring import backfill_service

    service = backfill_service()
    limit = args.limit or service.settings.sync_page_size
    start: str | None = args.cursor
    run = PagedRun(
        mode="backfill",
        dry_run=args.dry_run,
        page_results=lambda cursor: service.backfill_pages(cursor, limit, dry_run=args.dry_run),
        estimate=lambda cursor, done: estimated_backfill_total(start, cursor, done),
        resume=lambda cursor: _resume_command("backfill", args, cursor),
    )
    return run.run(start, out, err)


def reconcile(args: argparse.Namespace, out: Console, err: Console) -> int:
    from shared.wiring import reconcile_service

    service = reconcile_service()
    limit = args.limit or service.settings.sync_page_size
    run = PagedRun(
        mode="reconcile",
        dry_run=args.dry_run,
        page_results=lambda cursor: service.reconcile_pages(cursor, limit, dry_run=args.dry_run, full=args.full),
        # Reconcile's phases (changes, sweep, conflicts) have no total to read ahead: the bar is indeterminate.
        estimate=lambda cursor, done: float(done) if cursor is None else None,
        resume=lambda cursor: _resume_command("reconcile", args, cursor),
    )
    return run.run(args.cursor, out, err)


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
        utc(conflict.first_seen),
        utc(conflict.last_seen),
        utc(conflict.resolved_at) if conflict.resolved_at else "-",
    )


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def estimated_backfill_total(start: str | None, cursor: str | None, done: int) -> float | None:
    """Rows in the whole backfill, estimated from how far its cursor (the last id written) is through the id space:
    Project B's ids are random (gen_random_uuid), so `done` rows over that fraction. None when it cannot tell.

    An exact total would need a count of Project B's profiles, which its SQL surface does not offer.
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
