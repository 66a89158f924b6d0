"""What backfill (shared/backfill.py) and reconcile (shared/reconcile.py) share: a page done, and its log lines.

Both go in pages: one query to Project B and one statement to Project A per page, the page passed through as
JSON text (never a round trip, nor a parse, per client). sync_client and the operators' CLI (ops/cli) call them.
Cursors are opaque strings to callers; a page or a job run twice changes nothing more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from shared import metrics
from shared.logs import log_event
from shared.ports import OutcomeCounts
from shared.sync import log_bounded, log_outcomes


@dataclass(frozen=True)
class PageDone:
    """One page done: what it did, and where the next one starts (None: nothing left)."""

    applied: OutcomeCounts
    next_cursor: str | None


def page_done(
    applied: OutcomeCounts, next_cursor: str | None, mode: Literal["backfill", "reconcile"], dry_run: bool
) -> PageDone:
    """The page, logged: each conflict and each client bounded on the way in (unless nothing was written), then
    the page's counts."""
    if not dry_run:
        log_outcomes(applied.conflicts)
        log_bounded(applied.bounded)
        metrics.add_outcomes({k: v for k, v in applied.counts().items() if k != "conflicts"})
    log_event("sync_page_applied", logging.INFO, mode=mode, dry_run=dry_run, **applied.counts())
    return PageDone(applied, next_cursor)
