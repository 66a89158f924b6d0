-- What each function of the SQL surface does, as a comment on it: docs/sql-surface.md is generated from
-- these (python -m ops.sql_surface), and a test fails when the two differ.

comment on function public.create_session(uuid, timestamptz, integer, text, text) is
  'Books a session with a client as the calling therapist, under row level security, and claims a client no therapist has yet. Answers {outcome: created | existing | not_found | archived | idempotency_mismatch | not_a_therapist, session}.';

comment on function public.book_session_as(jsonb, uuid, timestamptz, integer, text, text, jsonb) is
  'create_session for the functions, in one statement: takes the verified claims, first copies the client from Project B (p_client) when Project A lacks it, then books as the therapist. Answers create_session''s JSON plus the copy''s row as client; email_conflict when another client holds the copy''s email.';

comment on function public.upsert_synced_clients(jsonb, uuid) is
  'Writes Project B''s states of clients ([{id, profile, updated_at}]): only a newer state, never a client Project A created itself, never an email another client holds; records and resolves conflicts. One row per id: inserted, updated, unchanged or conflict (kind email or id).';

comment on function public.archive_synced_clients(jsonb) is
  'Archives the synced clients Project B no longer has ([{id, deleted_at or absent_since}]) whose stored state is older than the absence; never deletes them. One row per id: archived or unchanged.';

comment on function public.sync_client_as(jsonb, uuid, jsonb, jsonb) is
  'sync_client''s one client for a therapist, in one statement: writes Project B''s state (or archives it for an absence), claims the client if nobody has, and answers ok with the write''s row, not_found or not_a_therapist.';

comment on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid) is
  'Writes one page of a backfill or reconcile: Project B''s clients (its JSON passed through), the absent ones, and for reconcile the watermark to keep. Answers the counts and the conflicts.';

comment on function public.sync_watermark(text) is
  'Where reconcile p_name stands: the (version, id) of the last change it applied; no row before its first page.';

comment on function public.sync_conflicts(boolean, integer) is
  'The conflicts the sync met, open ones first and oldest first seen first; resolved ones too when asked; at most 5000.';

comment on function public.synced_client_ids(uuid, integer) is
  'Ids of the active clients synced from Project B, in id order after p_after, at most 5000: what a full reconcile sweeps.';

comment on function public.open_conflict_ids(uuid, integer) is
  'Ids of the clients with an open conflict, in id order after p_after, at most 5000: what reconcile retries.';
