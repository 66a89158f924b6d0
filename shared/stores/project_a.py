"""Project A: books sessions as the therapist and writes synced clients as the service role."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from shared.config import Settings
from shared.errors import ConcurrentSyncRace, EmailConflict
from shared.models import ClientRow, CreateSessionRequest, Therapist
from shared.stores.pools import get_pool, pooled_connection

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

EMAIL_UNIQUE_CONSTRAINT = "clients_email_unique"
CLIENTS_PKEY = "clients_pkey"

# Synced fields follow Project B; notes (after the insert), phone, date_of_birth and therapist_id
# belong to Project A and are never touched here (therapist_id is set on insert only when a booking
# copies the client). An older state never overwrites a newer one, and
# a state equal to the stored one writes nothing. Answers one row: inserted, updated, or none.
_UPSERT_SYNCED_CLIENT = """
insert into public.clients as c
  (id, full_name, email, notes, therapist_id, status, synced_from,
   source_attributes, source_updated_at, last_synced_at)
values (%(id)s, %(full_name)s, %(email)s, %(notes)s, %(therapist_id)s, 'active', 'project_b',
        %(source_attributes)s, %(source_updated_at)s, now())
on conflict (id) do update set
  full_name = excluded.full_name,
  email = excluded.email,
  source_attributes = excluded.source_attributes,
  source_updated_at = excluded.source_updated_at,
  last_synced_at = excluded.last_synced_at,
  status = 'active',
  synced_from = 'project_b',
  updated_at = now()
where (c.source_updated_at is null or c.source_updated_at < excluded.source_updated_at)
  and (c.full_name, c.email, c.source_attributes, c.status, c.synced_from)
      is distinct from (excluded.full_name, excluded.email, excluded.source_attributes, 'active', 'project_b')
returning case when c.xmax = 0 then 'inserted' else 'updated' end as outcome
"""

# A client Project B no longer has is archived, never deleted: its sessions stay. Only when what
# was stored is older than the profile's absence (its deletion).
_ARCHIVE_SYNCED_CLIENT = """
update public.clients
   set status = 'archived', last_synced_at = now(), updated_at = now()
 where id = %s and synced_from = 'project_b' and status = 'active'
   and (source_updated_at is null or source_updated_at < %s)
returning id
"""

# Runs public.create_session as the therapist: role `authenticated` and the verified claims, set for this
# transaction only, as PostgREST does (migrations/project_a/0002_book_session_as.sql).
_CREATE_SESSION_AS = "select private.create_session_as(%s, %s, %s, %s, %s, %s)"

_EMAIL_HOLDER = "select id from public.clients where lower(email) = lower(%s)"


@dataclass(frozen=True)
class Booking:
    """What public.create_session answered, and whether this call inserted the client."""

    outcome: str
    session: dict[str, Any] | None
    client_inserted: bool


class ProjectAStore:
    """Project A over a direct Postgres connection."""

    def __init__(self, settings: Settings) -> None:
        if settings.project_a_db_url is None:
            raise RuntimeError("PROJECT_A_DB_URL is not set")
        self._settings = settings
        self._conninfo = settings.project_a_db_url.get_secret_value()

    def _pool(self) -> ConnectionPool:
        return get_pool("project_a", self._conninfo, self._settings)

    def book_session(
        self,
        therapist: Therapist,
        request: CreateSessionRequest,
        idempotency_key: str | None,
        new_client: ClientRow | None = None,
    ) -> Booking:
        """One transaction, one round trip: upsert the synced client if given, then book as the therapist.

        The common case is a single statement. With a client to copy, the two statements are pipelined on an
        autocommit connection: both are sent before any answer is awaited, and up to the pipeline's one Sync
        they form one implicit transaction, so an error in either undoes both. An unclaimed client (synced
        before anyone booked it) becomes this therapist's in public.create_session.
        """
        booking = (
            json.dumps(therapist.claims, default=str),
            request.client_id,
            request.starts_at,
            request.duration_minutes,
            request.notes,
            idempotency_key,
        )
        with pooled_connection(self._pool()) as conn:
            if new_client is None:
                result = conn.execute(_CREATE_SESSION_AS, booking).fetchone()[0]
                return Booking(outcome=result["outcome"], session=result.get("session"), client_inserted=False)
            try:
                with conn.pipeline():
                    upserted = conn.execute(_UPSERT_SYNCED_CLIENT, _client_params(new_client, therapist.id))
                    booked = conn.execute(_CREATE_SESSION_AS, booking)
            except psycopg.errors.UniqueViolation as exc:
                raise self._classify_duplicate(conn, exc, new_client) from exc
            result = booked.fetchone()[0]
            upsert_row = upserted.fetchone()
        return Booking(
            outcome=result["outcome"],
            session=result.get("session"),
            client_inserted=upsert_row is not None and upsert_row[0] == "inserted",
        )

    def upsert_synced_client(self, client: ClientRow) -> str:
        """Write Project B's state of a client: 'inserted', 'updated' or 'unchanged' (same or older state)."""
        with pooled_connection(self._pool()) as conn:
            try:
                row = conn.execute(_UPSERT_SYNCED_CLIENT, _client_params(client)).fetchone()
            except psycopg.errors.UniqueViolation as exc:
                raise self._classify_duplicate(conn, exc, client) from exc
        return row[0] if row else "unchanged"

    def archive_synced_client(self, client_id: UUID, absent_since: datetime) -> str:
        """Archive a client Project B no longer has: 'archived', or 'unchanged' when there is nothing to do."""
        with pooled_connection(self._pool()) as conn:
            row = conn.execute(_ARCHIVE_SYNCED_CLIENT, (client_id, absent_since)).fetchone()
        return "archived" if row else "unchanged"

    def _classify_duplicate(
        self, conn: psycopg.Connection, exc: psycopg.errors.UniqueViolation, client: ClientRow
    ) -> Exception:
        """The insert race (same id) is retried; an email held by another client is a conflict."""
        constraint = exc.diag.constraint_name
        if constraint == CLIENTS_PKEY:
            return ConcurrentSyncRace(str(client.id))
        if constraint == EMAIL_UNIQUE_CONSTRAINT and client.email:
            row = conn.execute(_EMAIL_HOLDER, (client.email,)).fetchone()
            if row is None or row[0] == client.id:
                # Two requests inserting the same client can collide on the email index before the id.
                return ConcurrentSyncRace(str(client.id))
            return EmailConflict(
                f"Another Project A client ({row[0]}) already has this client's email; nothing was written",
                other_client_id=str(row[0]),
            )
        return exc


def _client_params(client: ClientRow, therapist_id: UUID | None = None) -> dict[str, Any]:
    params = client.model_dump()
    params["therapist_id"] = therapist_id
    params["source_attributes"] = Jsonb(params["source_attributes"])
    return params
