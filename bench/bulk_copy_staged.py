"""Issue 17's design for the backfill, measured (not the product's path): each page moves from Project B to
Project A as a COPY stream (`COPY (<the page's rows>) TO STDOUT`, the rows client_page answers as columns, into
`COPY ... FROM STDIN` of a temporary staging table, passing through Python as bytes, never parsed), then one
set-based statement applies the sync's rules to the staged rows: upsert_synced_clients' own statement, read from
db/project_a/supabase/schemas/40_sync.sql, with the page taken from the staging table instead of its JSON text.
The next page is asked for as soon as one has come (its last id taken from the last row's first field, the only
bytes looked at), and read from Project B while one is staged and applied, as backfill_pages reads ahead.

It leaves out what upsert_synced_clients does after that statement (the id-conflict check of unchanged rows, the
answer per row in id order, the conflicts' bookkeeping), so it is, if anything, faster than the contract.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from uuid import UUID

import psycopg
from psycopg import sql

from bench.bulk_cases import Run
from bench.stack import Urls

ROOT = Path(__file__).resolve().parents[1]
_SCHEMA = ROOT / "db" / "project_a" / "supabase" / "schemas" / "40_sync.sql"
_FIRST_ID = UUID(int=0)

_STAGE = (
    "create temporary table if not exists bench_sync_stage"
    " (id uuid, profile jsonb, updated_at timestamptz, version_clamped boolean) on commit delete rows"
)
# client_page's rows (30_sync_surface.sql), as columns instead of one JSON array.
_PAGE_OUT = """
copy (
  select p.id, private.client_profile_json(p, u.email), private.kept_version(p.updated_at, statement_timestamp()),
         case when private.kept_version(p.updated_at, statement_timestamp()) is distinct from p.updated_at
              then true end
    from public.profiles p join auth.users u on u.id = p.id
   where p.id > {after} and u.id > {after}
   order by p.id
   limit {limit}
) to stdout
"""
_STAGE_IN = "copy pg_temp.bench_sync_stage from stdin"


def _last_id(chunks: list[bytes]) -> tuple[UUID | None, int]:
    """The page's last id and its row count, from COPY's text rows (one a line, the id first): the next page is
    asked for as soon as this one has come, as backfill_pages asks with client_page's last id."""
    data = b"".join(chunks)
    if not data:
        return None, 0
    last_row = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return UUID(last_row.split(b"\t", 1)[0].decode()), data.count(b"\n")


def staged_apply_statement() -> str:
    """upsert_synced_clients' statement over the staging table: its CTEs and its one aggregation, as a query."""
    text = _SCHEMA.read_text()
    body = text[text.index("  with incoming as (", text.index("create function public.upsert_synced_clients")) :]
    body = body[: body.index("    into v_ids, v_outcomes")] + "    from checked k left join written w on w.id = k.id"
    source = re.compile(r"from jsonb_to_recordset\(p_clients\) as s \([^)]*\)")
    if not source.search(body):
        raise RuntimeError("upsert_synced_clients no longer reads its page with jsonb_to_recordset")
    body = source.sub("from pg_temp.bench_sync_stage as s", body)
    return body.replace("p_therapist_id", "null::uuid")


def _read_page(source: psycopg.Connection[tuple[object, ...]], after: UUID, limit: int) -> list[bytes]:
    query = sql.SQL(_PAGE_OUT).format(after=sql.Literal(after), limit=sql.Literal(limit))
    with source.cursor().copy(query) as out:
        return [bytes(chunk) for chunk in out]


def copy_staged_backfill(urls: Urls, limit: int) -> Run:
    """A backfill of every Project B client into an empty Project A in pages of `limit`, by issue 17's design."""
    apply = staged_apply_statement()
    with (
        psycopg.connect(urls.admin_b, autocommit=True) as source,
        psycopg.connect(urls.admin_a, autocommit=True) as sink,
        ThreadPoolExecutor(max_workers=1) as reader,
    ):
        sink.execute(_STAGE)
        inserted = 0
        started = time.perf_counter()
        pending: Future[list[bytes]] | None = reader.submit(_read_page, source, _FIRST_ID, limit)
        while pending is not None:
            chunks = pending.result()
            last, count = _last_id(chunks)
            pending = reader.submit(_read_page, source, last, limit) if last is not None and count == limit else None
            with sink.transaction():
                with sink.cursor().copy(_STAGE_IN) as into:
                    for chunk in chunks:
                        into.write(chunk)
                row = sink.execute(apply).fetchone()
                outcomes = row[1] if row and row[1] else []
                inserted += sum(1 for outcome in outcomes if outcome == "inserted")
        seconds = time.perf_counter() - started
    return Run(inserted, seconds)
