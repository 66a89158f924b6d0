-- Project A: only therapists book, users cannot forge what the sync owns, and the sync writes only
-- rows that are synced from Project B (or do not exist yet). Every check lives here, in the database,
-- so that a call through PostgREST with a user's token is held to the same rules as the functions.

-- Who is a therapist: a row here. Managed by an administrator (or a trusted back office), never by users.
create table public.therapists (
  id uuid primary key references auth.users (id) on delete cascade,
  created_at timestamptz not null default now()
);

alter table public.therapists enable row level security;
revoke all on public.therapists from anon, authenticated;
grant select on public.therapists to authenticated;
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

-- Row level security: a therapist, and only on their own rows. `(select ...)` is evaluated once per
-- statement, not once per row.
alter policy clients_own_select on public.clients
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()));
alter policy clients_own_insert on public.clients
  with check (therapist_id = (select auth.uid()) and (select private.is_therapist()));
alter policy clients_own_update on public.clients
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()))
  with check (therapist_id = (select auth.uid()) and (select private.is_therapist()));
alter policy clients_own_delete on public.clients
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()));

alter policy sessions_own_select on public.sessions
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()));
alter policy sessions_own_insert on public.sessions
  with check (
    therapist_id = (select auth.uid())
    and (select private.is_therapist())
    and exists (
      select 1 from public.clients c
       where c.id = client_id and c.therapist_id = (select auth.uid()) and c.status = 'active'
    )
  );
alter policy sessions_own_update on public.sessions
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()))
  with check (
    therapist_id = (select auth.uid())
    and exists (select 1 from public.clients c where c.id = client_id and c.therapist_id = (select auth.uid()))
  );
alter policy sessions_own_delete on public.sessions
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()));

-- Column privileges: users write what a therapist owns; id, status and the sync's columns are the sync's.
revoke all on public.clients, public.sessions from anon;
revoke insert, update on public.clients from authenticated;
grant insert (full_name, email, phone, date_of_birth, notes, therapist_id) on public.clients to authenticated;
grant update (full_name, email, phone, date_of_birth, notes) on public.clients to authenticated;
revoke insert, update on public.sessions from authenticated;
grant insert (client_id, therapist_id, starts_at, duration_minutes, status, notes, idempotency_key)
  on public.sessions to authenticated;
grant update (client_id, starts_at, duration_minutes, status, notes) on public.sessions to authenticated;

-- Name and email of a synced client follow Project B; a therapist edits those of their native clients.
create function private.synced_fields_follow_project_b() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user in ('authenticated', 'anon') and old.synced_from is not null
     and (new.full_name, new.email) is distinct from (old.full_name, old.email) then
    raise exception 'the name and email of a client synced from Project B are changed in Project B'
      using errcode = '42501';
  end if;
  return new;
end;
$$;

create trigger clients_synced_fields_follow_project_b
  before update of full_name, email on public.clients
  for each row execute function private.synced_fields_follow_project_b();

-- A session moved to another client must land on an active one (row level security makes it the
-- therapist's own); sessions of a client archived since stay editable, to cancel or complete them.
create function private.session_moves_to_an_active_client() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from public.clients where id = new.client_id and status = 'active') then
    raise exception 'a session can only be moved to an active client' using errcode = '42501';
  end if;
  return new;
end;
$$;

create trigger sessions_move_to_an_active_client
  before update of client_id on public.sessions
  for each row when (old.client_id is distinct from new.client_id)
  execute function private.session_moves_to_an_active_client();

-- The caller's access to a client, claiming it when no therapist has it yet. Answers 'ok', 'archived',
-- 'not_found' (absent, or another therapist's: the caller cannot tell which) or 'not_a_therapist'.
-- Locks the row FOR SHARE until commit so that an archive cannot slip between this check and the insert.
create or replace function private.client_access(p_client_id uuid) returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_therapist uuid;
  v_status text;
begin
  if v_uid is null or not private.is_therapist() then
    return 'not_a_therapist';
  end if;

  update public.clients
     set therapist_id = v_uid, updated_at = now()
   where id = p_client_id and therapist_id is null and status = 'active';

  select therapist_id, status into v_therapist, v_status
    from public.clients where id = p_client_id
    for share;

  if not found then
    return 'not_found';
  elsif v_therapist is null and v_status = 'archived' then
    return 'archived';
  elsif v_therapist is distinct from v_uid then
    return 'not_found';
  elsif v_status = 'archived' then
    return 'archived';
  end if;
  return 'ok';
end;
$$;

-- Books a session as the calling therapist (row level security applies). Answers
-- {"outcome": created|existing|not_found|archived|idempotency_mismatch|not_a_therapist, "session": {...}}.
create or replace function public.create_session(
  p_client_id uuid,
  p_starts_at timestamptz,
  p_duration_minutes integer default 50,
  p_notes text default null,
  p_idempotency_key text default null
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_access text;
  v_session public.sessions;
begin
  -- Row level security shows a non-therapist no session, and client_access answers not_a_therapist.
  if p_idempotency_key is not null then
    select * into v_session from public.sessions
     where therapist_id = v_uid and idempotency_key = p_idempotency_key;
    if found then
      return private.idempotent_replay(v_session, p_client_id, p_starts_at, p_duration_minutes, p_notes);
    end if;
  end if;

  v_access := private.client_access(p_client_id);
  if v_access <> 'ok' then
    return jsonb_build_object('outcome', v_access);
  end if;

  insert into public.sessions (client_id, therapist_id, starts_at, duration_minutes, notes, idempotency_key)
  values (p_client_id, v_uid, p_starts_at, p_duration_minutes, p_notes, p_idempotency_key)
  on conflict (therapist_id, idempotency_key) do nothing
  returning * into v_session;

  if not found then
    -- A concurrent request with the same idempotency key committed first.
    select * into v_session from public.sessions
     where therapist_id = v_uid and idempotency_key = p_idempotency_key;
    return private.idempotent_replay(v_session, p_client_id, p_starts_at, p_duration_minutes, p_notes);
  end if;

  return jsonb_build_object('outcome', 'created', 'session', to_jsonb(v_session));
end;
$$;

-- Writes Project B's state of clients: `p_clients` is a JSON array of
-- {id, full_name, email, notes, source_attributes, source_updated_at}. One answer row per distinct id:
-- outcome inserted | updated | unchanged | conflict, with the conflict's kind (email | id) and, for an
-- email, the client holding it. Synced fields follow Project B; notes (after the insert), phone,
-- date_of_birth and therapist_id are Project A's and never touched (therapist_id is set on insert only,
-- when a booking copies the client). An older or equal state writes nothing. A row Project A created
-- itself (synced_from is null) is never written: conflict of kind id. An email another client holds
-- is never taken: conflict of kind email. A concurrent insert of that email still raises
-- unique_violation (clients_email_unique); the caller retries and then sees the holder here.
create function public.upsert_synced_clients(p_clients jsonb, p_therapist_id uuid default null)
returns table (client_id uuid, outcome text, conflict text, other_client_id uuid)
language plpgsql
security invoker
set search_path = ''
as $$
#variable_conflict use_column
declare
  r record;
begin
  for r in
  with incoming as (
    select distinct on (r.id) r.id, r.full_name, nullif(btrim(r.email), '') as email, r.notes,
           coalesce(r.source_attributes, '{}'::jsonb) as source_attributes, r.source_updated_at
      from jsonb_to_recordset(p_clients) as r (
        id uuid, full_name text, email text, notes text, source_attributes jsonb, source_updated_at timestamptz
      )
     order by r.id, r.source_updated_at desc nulls last
  ), checked as (
    select i.*,
           case when holder.id is not null or earlier.id is not null then 'email' end as conflict,
           coalesce(holder.id, earlier.id) as other_client_id
      from incoming i
      left join lateral (
        select c.id from public.clients c
         where c.email is not null and lower(c.email) = lower(i.email) and c.id <> i.id
         limit 1
      ) holder on true
      left join lateral (  -- two incoming clients with one email: the first in id order takes it
        select o.id from incoming o
         where lower(o.email) = lower(i.email) and o.id < i.id
         order by o.id
         limit 1
      ) earlier on true
  ), written as (
    insert into public.clients as c
      (id, full_name, email, notes, therapist_id, status, synced_from,
       source_attributes, source_updated_at, last_synced_at)
    select k.id, k.full_name, k.email, k.notes, p_therapist_id, 'active', 'project_b',
           k.source_attributes, k.source_updated_at, now()
      from checked k
     where k.conflict is null
    on conflict (id) do update set
      full_name = excluded.full_name,
      email = excluded.email,
      source_attributes = excluded.source_attributes,
      source_updated_at = excluded.source_updated_at,
      last_synced_at = excluded.last_synced_at,
      status = 'active',
      updated_at = now()
    where c.synced_from = 'project_b'  -- a row Project A created itself is never written
      and (c.source_updated_at is null or c.source_updated_at < excluded.source_updated_at)
      and (c.full_name, c.email, c.source_attributes, c.status)
          is distinct from (excluded.full_name, excluded.email, excluded.source_attributes, 'active')
    returning c.id, case when c.xmax = 0 then 'inserted' else 'updated' end as outcome
  )
  select k.id, case when k.conflict is not null then 'conflict' else coalesce(w.outcome, 'unchanged') end as result,
         k.conflict as kind, k.other_client_id as other
    from checked k
    left join written w on w.id = k.id
   order by k.id
  loop
    client_id := r.id;
    outcome := r.result;
    conflict := r.kind;
    other_client_id := r.other;
    -- The upsert's guard skipped a row Project A created itself (one committed while this ran included:
    -- a new statement sees it).
    if r.result = 'unchanged'
       and exists (select 1 from public.clients n where n.id = r.id and n.synced_from is null) then
      outcome := 'conflict';
      conflict := 'id';
    end if;
    return next;
  end loop;
end;
$$;

-- Archives clients Project B no longer has: `p_absences` is a JSON array of {id, deleted_at} (the deletion
-- Project B recorded) or {id, absent_since} (when a read found no profile and no deletion is recorded).
-- Only synced, active clients whose stored state is older than the absence; never deleted, so their
-- sessions stay. A recorded deletion becomes the stored version, so that a state read before the deletion
-- and written after the archive cannot bring the client back; a profile that really returns is newer.
-- One answer row per id: archived or unchanged.
create function public.archive_synced_clients(p_absences jsonb)
returns table (client_id uuid, outcome text)
language sql
security invoker
set search_path = ''
as $$
  with absent as (
    select distinct on (a.id) a.id, a.deleted_at, coalesce(a.deleted_at, a.absent_since) as absent_since
      from jsonb_to_recordset(p_absences) as a (id uuid, deleted_at timestamptz, absent_since timestamptz)
     order by a.id, coalesce(a.deleted_at, a.absent_since) desc
  ), archived as (
    update public.clients c
       set status = 'archived', source_updated_at = coalesce(a.deleted_at, c.source_updated_at),
           last_synced_at = now(), updated_at = now()
      from absent a
     where c.id = a.id and c.synced_from = 'project_b' and c.status = 'active'
       and (c.source_updated_at is null or c.source_updated_at < a.absent_since)
    returning c.id
  )
  select a.id, case when exists (select 1 from archived x where x.id = a.id) then 'archived' else 'unchanged' end
    from absent a
   order by a.id
$$;

-- Booking as the therapist in ONE statement. The functions' connection (service role) calls this with
-- the verified claims: it sets request.jwt.claims and, when Project A lacks the client, first writes the
-- copy `p_client` (one element of upsert_synced_clients' array) as the service role; then it switches to
-- `authenticated` for the rest of the transaction, as PostgREST does, and public.create_session runs under
-- row level security. Answers create_session's JSON plus `client` (the upsert's row, when a copy was
-- given); `email_conflict` when the copy could not be made because another client has its email.
create function public.book_session_as(
  p_claims jsonb,
  p_client_id uuid,
  p_starts_at timestamptz,
  p_duration_minutes integer,
  p_notes text,
  p_idempotency_key text,
  p_client jsonb default null
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_copy jsonb;
  v_copy_refused boolean := false;
  v_result jsonb;
begin
  perform set_config('request.jwt.claims', p_claims::text, true);
  if auth.uid() is null or not private.is_therapist() then
    return jsonb_build_object('outcome', 'not_a_therapist');
  end if;

  if p_client is not null then
    select to_jsonb(u) into v_copy
      from public.upsert_synced_clients(jsonb_build_array(p_client || jsonb_build_object('id', p_client_id)),
                                        auth.uid()) as u;
    v_copy_refused := v_copy ->> 'conflict' = 'email'
                      and not exists (select 1 from public.clients where id = p_client_id);
  end if;

  perform set_config('role', 'authenticated', true);
  v_result := public.create_session(p_client_id, p_starts_at, p_duration_minutes, p_notes, p_idempotency_key);
  if v_copy_refused and v_result ->> 'outcome' = 'not_found' then
    v_result := jsonb_build_object('outcome', 'email_conflict');
  end if;
  return v_result || jsonb_strip_nulls(jsonb_build_object('client', v_copy));
end;
$$;

drop function private.create_session_as(text, uuid, timestamptz, integer, text, text);

revoke all on function public.upsert_synced_clients(jsonb, uuid) from public, anon, authenticated;
revoke all on function public.archive_synced_clients(jsonb) from public, anon, authenticated;
revoke all on function public.book_session_as(jsonb, uuid, timestamptz, integer, text, text, jsonb)
  from public, anon, authenticated;
grant execute on function public.upsert_synced_clients(jsonb, uuid) to service_role;
grant execute on function public.archive_synced_clients(jsonb) to service_role;
grant execute on function public.book_session_as(jsonb, uuid, timestamptz, integer, text, text, jsonb)
  to service_role;
