from uuid import UUID

from bench.bulk_copy_staged import _PAGE_OUT, ROOT, _last_id, staged_apply_statement


def test_the_staged_design_applies_upsert_synced_clients_own_statement_to_the_staging_table() -> None:
    statement = staged_apply_statement()
    assert "from pg_temp.bench_sync_stage as s" in statement
    assert "p_clients" not in statement and "p_therapist_id" not in statement
    assert "on conflict (id) do update" in statement and "private.synced_columns" in statement


def test_the_staged_pages_are_client_pages_rows() -> None:
    # bench/bulk_copy_staged.py's COPY of a page repeats client_page's columns; a change there must show here.
    client_page = (ROOT / "db/project_b/supabase/schemas/30_sync_surface.sql").read_text()
    page = client_page[client_page.index("create function public.client_page") :]
    page = page[: page.index("$$;")]
    for column in (
        "private.client_profile_json(p, u.email)",
        "private.kept_version(p.updated_at, statement_timestamp())",
    ):
        assert column in page and column in _PAGE_OUT
    assert "order by p.id" in page and "order by p.id" in _PAGE_OUT


def test_a_pages_last_id_and_count_come_from_its_last_row() -> None:
    rows = [
        b"00000000-0000-4000-8000-000000000001\t{}\t2026-01-01\t\\N\n0000",
        b"0000-0000-4000-8000-00000000000f\t{}\t2026\t\\N\n",
    ]
    assert _last_id(rows) == (UUID("00000000-0000-4000-8000-00000000000f"), 2)
    assert _last_id([]) == (None, 0)
