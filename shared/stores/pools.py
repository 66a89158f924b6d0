"""Connection pools, one per database URL, opened on first use and kept for warm invocations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import psycopg

from shared.config import Settings

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg_pool import ConnectionPool

_pools: dict[tuple[str, str], ConnectionPool] = {}
_lock = threading.Lock()


def _act_as_service_role(conn: Connection) -> None:
    # Supabase's direct connection user may do anything; the sync needs only the service role's rights.
    conn.execute("set role service_role")


def get_pool(name: str, conninfo: str, settings: Settings, *, options: str = "") -> ConnectionPool:
    """The pool for `conninfo`, created on first use (psycopg_pool is imported only then)."""
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
                configure=_act_as_service_role,
                # prepare_threshold=None: Supabase's transaction pooler cannot keep prepared statements.
                # autocommit: a lone statement is one round trip (no BEGIN/COMMIT), and a pipeline's
                # statements up to its one Sync run as one implicit transaction.
                kwargs={
                    "autocommit": True,
                    "connect_timeout": max(1, round(settings.db_connect_timeout_seconds)),
                    "prepare_threshold": None,
                    "application_name": f"client-sync-{name}",
                    **({"options": options} if options else {}),
                },
                open=True,
            )
            _pools[key] = pool
    return pool


@contextmanager
def pooled_connection(pool: ConnectionPool) -> Iterator[Connection]:
    """A connection of `pool`; when one turns out dead, the idle ones are checked too before the retry."""
    conn: Connection | None = None
    try:
        with pool.connection() as conn:
            yield conn
    except psycopg.OperationalError:
        if conn is not None and conn.broken:
            # A failover or pooler restart kills every pooled connection at once.
            pool.check()
        raise


def close_pools() -> None:
    """Close every pool (tests and the dev stack call this on the way out)."""
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
