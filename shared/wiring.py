"""The one place that builds the services over the configured backend, once per process, on first use."""

from __future__ import annotations

from functools import lru_cache

from shared.booking import BookingService
from shared.config import get_settings
from shared.ports import ProjectA, ProjectB
from shared.sync import SyncService


@lru_cache(maxsize=1)
def projects() -> tuple[ProjectA, ProjectB]:
    """Project A and Project B over the configured backend (psycopg is imported only here, when first used)."""
    from shared.stores.postgres import PostgresProjectA, PostgresProjectB

    settings = get_settings()
    return PostgresProjectA(settings), PostgresProjectB(settings)


@lru_cache(maxsize=1)
def sync_service() -> SyncService:
    settings = get_settings()
    retry_queue = None
    if settings.sync_retry_queue_url:
        from shared.stores.retry_queue import RetryQueue

        retry_queue = RetryQueue(settings.sync_retry_queue_url, settings)
    project_a, project_b = projects()
    return SyncService(project_a, project_b, retry_queue)


@lru_cache(maxsize=1)
def booking_service() -> BookingService:
    project_a, _ = projects()
    return BookingService(project_a, sync_service())


def reset() -> None:
    """Forget the services (tests change the settings between cases)."""
    for cached in (projects, sync_service, booking_service):
        cached.cache_clear()
