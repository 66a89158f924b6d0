-- What each function of the SQL surface does, as a comment on it: docs/sql-surface.md is generated from
-- these (python -m ops.sql_surface), and a test fails when the two differ.

comment on function public.client_states(uuid[]) is
  'The current state of each id asked, in that order: its profile and version, or its recorded deletion; read_at is when Project B answered.';

comment on function public.client_page(uuid, integer, uuid) is
  'A page of clients in id order after p_after and up to p_until, at most p_limit (5000): their states as one JSON array, the last id and the count. What a backfill walks.';

comment on function public.client_changes(timestamptz, uuid, integer) is
  'Up to p_limit changes after (p_since, p_since_id) in (version, id) order: the clients written, the clients deleted, and the (version, id) of the last change. What reconcile reads.';

comment on function private.install_client_sync_webhook(text, text, integer) is
  'Installs the database webhook (or points it elsewhere) on profiles and on email changes of auth.users, and keeps its secret in Vault. Run once per environment, by an administrator.';

comment on function private.uninstall_client_sync_webhook() is
  'Removes the database webhook''s triggers.';
