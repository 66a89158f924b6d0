"""The one place that builds the services over the configured backend, once per process, on first use."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from shared.backfill import BackfillService
from shared.booking import BookingService
from shared.config import Settings, get_settings
from shared.invites import InviteService
from shared.links import LinkService
from shared.ports import ProjectA, ProjectB, ProjectBAuth
from shared.reconcile import ReconcileService
from shared.status import StatusService
from shared.sync import SyncService

if TYPE_CHECKING:
    from shared.stores.retry_queue import RetryQueue


@lru_cache(maxsize=1)
def projects() -> tuple[ProjectA, ProjectB]:
    """Project A and Project B, each over its configured backend (Settings.backend_of): a direct Postgres
    connection, or PostgREST's rpc. Each driver is imported only here, and only for a project that uses it."""
    settings = get_settings()
    return project_a(settings), project_b(settings)


def project_a(settings: Settings) -> ProjectA:
    if settings.backend_of("project_a") == "client":
        from shared.stores.rpc import RpcProjectA

        return RpcProjectA(settings)
    from shared.stores.postgres import PostgresProjectA

    return PostgresProjectA(settings)


def project_b(settings: Settings) -> ProjectB:
    if settings.backend_of("project_b") == "client":
        from shared.stores.rpc import RpcProjectB

        return RpcProjectB(settings)
    from shared.stores.postgres import PostgresProjectB

    return PostgresProjectB(settings)


@lru_cache(maxsize=1)
def queue() -> RetryQueue | None:
    """The SQS queue of webhook retries and backfill jobs, when one is configured (boto3 is imported then)."""
    settings = get_settings()
    if not settings.sync_retry_queue_url:
        return None
    from shared.stores.retry_queue import RetryQueue

    return RetryQueue(settings.sync_retry_queue_url, settings)


@lru_cache(maxsize=1)
def sync_service() -> SyncService:
    project_a, project_b = projects()
    return SyncService(project_a, project_b, queue())


@lru_cache(maxsize=1)
def backfill_service() -> BackfillService:
    project_a, project_b = projects()
    return BackfillService(project_a, project_b, get_settings(), queue())


@lru_cache(maxsize=1)
def reconcile_service() -> ReconcileService:
    project_a, project_b = projects()
    return ReconcileService(project_a, project_b, get_settings())


@lru_cache(maxsize=1)
def booking_service() -> BookingService:
    project_a, _ = projects()
    return BookingService(project_a, sync_service())


@lru_cache(maxsize=1)
def link_service() -> LinkService:
    project_a, project_b = projects()
    return LinkService(project_a, project_b)


@lru_cache(maxsize=1)
def project_b_auth() -> ProjectBAuth | None:
    """Project B's Auth admin API, when its URL and service-role key are configured (supabase_auth is imported
    then, and only then)."""
    settings = get_settings()
    configured = settings.project_b_auth
    if configured is None:
        return None
    from shared.stores.auth_admin import AuthAdminProjectB

    return AuthAdminProjectB(settings, *configured)


@lru_cache(maxsize=1)
def invite_service() -> InviteService:
    project_a, project_b = projects()
    return InviteService(project_a, project_b, project_b_auth(), sync_service())


@lru_cache(maxsize=1)
def status_service() -> StatusService:
    project_a, _ = projects()
    return StatusService(project_a, get_settings(), queue())


def reset() -> None:
    """Forget the services (tests change the settings between cases)."""
    cached_services = (projects, queue, sync_service, backfill_service, reconcile_service, booking_service)
    for cached in (*cached_services, link_service, project_b_auth, invite_service, status_service):
        cached.cache_clear()
