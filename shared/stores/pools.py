"""Connection pools, one per database URL, opened on first use and kept for warm invocations."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from shared.config import Project, Settings
from shared.errors import EMAIL_UNIQUE_CONSTRAINT, ConcurrentSyncRace, TransientError

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg_pool import ConnectionPool


_pools: dict[tuple[str, str], ConnectionPool] = {}
_lock = threading.Lock()

_STATEMENT_TIMEOUT_SETTINGS: dict[Project, str] = {
    "project_a": "project_a_statement_timeout_ms",
    "project_b": "project_b_statement_timeout_ms",
}

_SESSION_SETUP = sql.SQL(
    "set statement_timeout = {}; set lock_timeout = {}; set client_sync.max_version_skew_seconds = {}"
)


def session_setup(
    statement_timeout_ms: int, lock_timeout_ms: int, max_version_skew_seconds: float
) -> Callable[[Connection], None]:
    """The pool's `configure`: what every new connection runs, in one round trip (a simple query).

    The connection stays the functions' login, client_sync, which may only execute the SQL surface's functions (a
    booking's statement switches to authenticated to book as the therapist; db/client_sync_role.sql).
    The timeouts are set here rather than as startup `options`, which a pooler may not pass on, and so is the skew
    a version read from Project B may have (Settings.max_version_skew_seconds), which the SQL reads.
    """
    statement = _SESSION_SETUP.format(
        sql.Literal(int(statement_timeout_ms)),
        sql.Literal(int(lock_timeout_ms)),
        sql.Literal(str(max_version_skew_seconds)),
    )

    def configure(conn: Connection) -> None:
        conn.execute(statement)

    return configure


def get_pool(name: Project, conninfo: str, settings: Settings) -> ConnectionPool:
    """The pool for `conninfo`, created on first use (psycopg_pool is imported only then).

    Its connections get the statement timeout of the project `name` and settings.db_lock_timeout_ms.
    """
    statement_timeout_ms = int(getattr(settings, _STATEMENT_TIMEOUT_SETTINGS[name]))
    key = (name, conninfo)
    pool = _pools.get(key)
    if pool is not None:
        return pool
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            from psycopg_pool import ConnectionPool

            pool = ConnectionPool(
                conninfo,
                name=name,
                min_size=1,
                max_size=settings.db_pool_max_size,
                timeout=settings.db_pool_timeout_seconds,
                configure=session_setup(
                    statement_timeout_ms, settings.db_lock_timeout_ms, settings.max_version_skew_seconds
                ),
                # prepare_threshold=None: Supabase's transaction pooler cannot keep prepared statements.
                # autocommit: a lone statement is one round trip (no BEGIN/COMMIT), and a pipeline's
                # statements up to its one Sync run as one implicit transaction.
                kwargs={
                    "autocommit": True,
                    "connect_timeout": max(1, round(settings.db_connect_timeout_seconds)),
                    "prepare_threshold": None,
                    "application_name": f"client-sync-{name}",
                },
                open=True,
            )
            _pools[key] = pool
    return pool


@contextmanager
def pooled_connection(pool: ConnectionPool) -> Iterator[Connection]:
    """A connection of `pool`. Faults that may pass (a dropped connection, a pool or statement timeout, a
    serialization failure or deadlock) become TransientError; when a connection turns out dead, the idle
    ones are checked too before the retry. A refused login is not transient. An email a concurrent insert took
    after a write checked it (Project A's clients_synced_email_unique) is ConcurrentSyncRace: the retry then sees
    the holder and answers a conflict."""
    conn: Connection | None = None
    try:
        with pool.connection() as conn:
            yield conn
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == EMAIL_UNIQUE_CONSTRAINT:
            raise ConcurrentSyncRace(EMAIL_UNIQUE_CONSTRAINT) from exc
        raise
    except Exception as exc:
        if not is_transient(exc):
            raise
        if conn is not None and conn.broken:
            # A failover or pooler restart kills every pooled connection at once.
            pool.check()
        raise TransientError(type(exc).__name__) from exc


def is_transient(exc: BaseException) -> bool:
    """Dropped connections, pool timeouts, statement and lock timeouts, 40001 and 40P01 may pass; a refused
    login does not."""
    if isinstance(exc, psycopg.errors.InvalidAuthorizationSpecification):
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def pools_idle() -> bool:
    """Whether every pool's connections are idle in it, none in use or being opened (a pool that had a caller
    wait grows in the background): what a count of round trips waits for before it starts."""
    with _lock:
        stats = [pool.get_stats() for pool in _pools.values()]
    return all(stat.get("pool_available", 0) == stat.get("pool_size", 0) for stat in stats)


def close_pools() -> None:
    """Close every pool (tests, benchmarks and the operators' CLI call this on the way out)."""
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
