"""The sync's status as a table, as the service role (shared/status.py; sync_client's `{"mode": "status"}`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ops.cli import OK

if TYPE_CHECKING:
    from rich.console import Console


def status(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich import box
    from rich.table import Table

    from shared.wiring import status_service

    found = status_service().status()
    table = Table(box=box.SIMPLE_HEAD, title="Sync status", title_justify="left", show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("value")
    lag = found["lag_seconds"]
    table.add_row("watermark", found["watermark"] or "- (no reconcile yet)")
    table.add_row("lag behind Project B", "-" if lag is None else f"{lag:.1f} s")
    for kind in ("reconcile", "backfill"):
        table.add_row(f"last {kind}", _run(found[f"last_{kind}"]))
    table.add_row("open conflicts", str(found["open_conflicts"]))
    table.add_row("open link suggestions", str(found["open_link_suggestions"]))
    queue = found["queue"]
    table.add_row("queue", "- (none configured)" if queue is None else _queue(queue))
    out.print(table)
    return OK


def _run(run: dict[str, Any] | None) -> str:
    if run is None:
        return "- (none yet)"
    counts = ", ".join(f"{name} {value}" for name, value in run["counts"].items())
    state = (
        f"finished {run['finished_at']}" if run["finished_at"] else f"under way ({run['parts_done']}/{run['parts']})"
    )
    return f"started {run['started_at']}, {state}, last page {run['last_page_at']}: {counts or 'nothing'}"


def _queue(queue: dict[str, int | None]) -> str:
    dead = "-" if queue["dead_letter"] is None else str(queue["dead_letter"])
    return f"{queue['visible']} visible, {queue['in_flight']} in flight, {dead} in the dead-letter queue"
