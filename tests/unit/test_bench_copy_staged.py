from bench.bulk_copy_staged import staged_apply_statement


def test_the_staged_design_applies_upsert_synced_clients_own_statement_to_the_staging_table() -> None:
    statement = staged_apply_statement()
    assert "from pg_temp.bench_sync_stage as s" in statement
    assert "p_clients" not in statement and "p_therapist_id" not in statement
    assert "on conflict (id) do update" in statement and "private.synced_columns" in statement
