-- The functions' login, client_sync, no longer acts as service_role (db/client_sync_role.sql takes that
-- membership away): it calls the SQL surface as itself, with no privilege on any table. The three functions
-- it calls are security definers already (owned by the tables' owner, search_path pinned); it may execute them.

grant execute on function public.client_states(uuid[]) to client_sync;
grant execute on function public.client_page(uuid, integer, uuid) to client_sync;
grant execute on function public.client_changes(timestamptz, uuid, integer) to client_sync;
