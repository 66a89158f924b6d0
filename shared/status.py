"""The sync's status for operators (sync_client's `{"mode": "status"}`, `python -m ops.cli status`): Project A's
watermark and its age (the lag behind Project B), the last backfill and reconcile, the open conflicts and link
suggestions, and the queue's depths. Counts and times only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from shared.config import Settings
from shared.ports import ProjectA, Watermark

if TYPE_CHECKING:
    from shared.stores.retry_queue import RetryQueue


class StatusService:
    def __init__(self, project_a: ProjectA, settings: Settings, queue: RetryQueue | None = None) -> None:
        self.project_a = project_a
        self.settings = settings
        self.queue = queue

    def status(self) -> dict[str, Any]:
        """Project A's sync_status, with `lag_seconds` and `queue` ({visible, in_flight, dead_letter}, or None
        without a queue)."""
        found = self.project_a.sync_status()
        watermark = None
        if found.get("watermark") and found.get("watermark_id"):
            watermark = Watermark(datetime.fromisoformat(found["watermark"]), UUID(found["watermark_id"]))
        return {
            "watermark": found.get("watermark"),
            "lag_seconds": self._lag_seconds(watermark),
            "last_reconcile": found.get("last_reconcile"),
            "last_backfill": found.get("last_backfill"),
            "open_conflicts": int(found.get("open_conflicts") or 0),
            "open_link_suggestions": int(found.get("open_link_suggestions") or 0),
            "queue": self.queue.depths(self.settings.sync_dead_letter_queue_url) if self.queue else None,
        }

    @staticmethod
    def _lag_seconds(watermark: Watermark | None) -> float | None:
        """The watermark's age: how long ago the last change of Project B that reconcile applied was made (None
        before reconcile's first page). In a quiet hour it grows with nothing to apply: read it with the time of
        the last reconcile."""
        if watermark is None:
            return None
        return round(max((datetime.now(UTC) - watermark.version).total_seconds(), 0.0), 3)
