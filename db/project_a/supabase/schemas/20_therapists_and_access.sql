-- Project A: only therapists see and book, each on their own clients. Every check lives here, in the
-- database, so that a call through PostgREST with a user's token is held to the same rules as the functions.

-- Who is a therapist: a row here. Managed by an administrator (or a trusted back office), never by users.
create table public.therapists (
  id uuid primary key references auth.users (id) on delete cascade,
  created_at timestamptz not null default now()
);

alter table public.therapists enable row level security;
revoke all on public.therapists from anon, authenticated;
grant select on public.therapists to authenticated;
revoke truncate, trigger, references on public.therapists from anon, authenticated;
create policy therapists_self_select on public.therapists for select to authenticated
  using (id = (select auth.uid()));

create function private.is_therapist() returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (select 1 from public.therapists where id = auth.uid())
$$;

revoke all on function private.is_therapist() from public;
grant execute on function private.is_therapist() to authenticated, service_role;

-- Row level security: a therapist, and only on their own clients. `(select ...)` is evaluated once per
-- statement, not once per row.
create policy clients_own_select on public.clients for select to authenticated
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()));
create policy clients_own_insert on public.clients for insert to authenticated
  with check (therapist_id = (select auth.uid()) and (select private.is_therapist()));
create policy clients_own_update on public.clients for update to authenticated
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()))
  with check (therapist_id = (select auth.uid()) and (select private.is_therapist()));
create policy clients_own_delete on public.clients for delete to authenticated
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()));

-- The caller's access to a client, claiming it when no therapist has it yet. Answers 'ok', 'archived' (the
-- caller's own client, archived), 'not_found' (absent, another therapist's, or archived before anyone claimed
-- it: the caller cannot tell which) or 'not_a_therapist'. Only the caller's own row is read, and locked FOR
-- SHARE until commit so that an archive cannot slip between this check and the insert: a lock on anyone
-- else's row would be a write, which would make its not_found slower than an absent id's.
create function private.client_access(p_client_id uuid) returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_status text;
begin
  if v_uid is null or not private.is_therapist() then
    return 'not_a_therapist';
  end if;

  update public.clients
     set therapist_id = v_uid, updated_at = now()
   where id = p_client_id and therapist_id is null and status = 'active';

  select status into v_status
    from public.clients where id = p_client_id and therapist_id = v_uid
    for share;

  if not found then
    return 'not_found';
  end if;
  return case when v_status = 'archived' then 'archived' else 'ok' end;
end;
$$;

revoke all on function private.client_access(uuid) from public;
grant execute on function private.client_access(uuid) to authenticated;

-- Whether Project A holds this id for another therapist than `p_therapist_id`, or as an archived client of its
-- own that nobody has: then no copy from Project B can make it theirs. Only the functions' security definers ask
-- (copy_client_for_booking and sync_client_as, never a user): book_session_as's not_found then spares the second
-- call to Project A, and sync_client_as writes nothing, so that these 404s cost what an unknown id's does.
create function private.held_elsewhere(p_client_id uuid, p_therapist_id uuid) returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.clients
     where id = p_client_id
       and therapist_id is distinct from p_therapist_id
       and (therapist_id is not null or (synced_from is null and status = 'archived'))
  )
$$;

revoke all on function private.held_elsewhere(uuid, uuid) from public;
grant execute on function private.held_elsewhere(uuid, uuid) to service_role;
