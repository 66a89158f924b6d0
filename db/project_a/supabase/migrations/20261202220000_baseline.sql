-- Baseline of Project A: the history of migrations/project_a/0001-0009 squashed into one migration, nothing
-- having been released. It is the schema files (supabase/schemas) as they stood then, in their order.
-- Migrations are forward-only from here: each later change is a new migration named for it, and the drift
-- test (tests/integration/test_schema_drift.py) proves that the migrations and the schema files agree.

-- ===== schemas/10_clients.sql =====

-- Project A: therapists' clients. A client is either Project A's own (synced_from is null) or a copy of a
-- Project B client kept by the sync (synced_from = 'project_b').

-- Not exposed through PostgREST: helpers that need more than the caller's rights.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

create table public.clients (
  id uuid primary key default gen_random_uuid(),
  full_name text not null check (length(btrim(full_name)) > 0),
  email text,
  phone text,
  date_of_birth date,
  notes text,
  -- Null for clients the proactive sync created before any therapist booked them.
  therapist_id uuid,
  status text not null default 'active' check (status in ('active', 'archived')),
  synced_from text check (synced_from in ('project_b')),
  source_attributes jsonb not null default '{}'::jsonb,
  source_updated_at timestamptz,
  last_synced_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create unique index clients_email_unique on public.clients (lower(email)) where email is not null;
-- Synced clients no therapist has booked stay out of it (row level security's `therapist_id = auth.uid()`
-- implies not null, so it still uses it), and a backfill of many of them writes no index entry for each.
create index clients_therapist_id_idx on public.clients (therapist_id) where therapist_id is not null;

alter table public.clients enable row level security;

-- Column privileges: users write what a therapist owns; id, status and the sync's columns are the sync's.
-- The API roles never get TRUNCATE (it empties a table past row level security), TRIGGER (a user's trigger
-- runs as whoever writes the table next) or REFERENCES, which Supabase's default privileges grant.
revoke all on public.clients from anon;
revoke insert, update on public.clients from authenticated;
grant insert (full_name, email, phone, date_of_birth, notes, therapist_id) on public.clients to authenticated;
grant update (full_name, email, phone, date_of_birth, notes) on public.clients to authenticated;
revoke truncate, trigger, references on public.clients from anon, authenticated;

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

-- ===== schemas/20_therapists_and_access.sql =====

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

-- The caller's access to a client, claiming it when no therapist has it yet. Answers 'ok', 'archived',
-- 'not_found' (absent, or another therapist's: the caller cannot tell which) or 'not_a_therapist'.
-- Locks the row FOR SHARE until commit so that an archive cannot slip between this check and the insert.
create function private.client_access(p_client_id uuid) returns text
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

revoke all on function private.client_access(uuid) from public;
grant execute on function private.client_access(uuid) to authenticated;

-- ===== schemas/30_sessions_and_booking.sql =====

-- Project A: the sessions booked with clients, and booking: create_session as the therapist (row level
-- security applies), book_session_as for the functions (one statement per booking).

create table public.sessions (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references public.clients (id),
  therapist_id uuid not null,
  starts_at timestamptz not null,
  duration_minutes integer not null default 50 check (duration_minutes between 1 and 600),
  status text not null default 'scheduled'
    check (status in ('scheduled', 'completed', 'cancelled', 'no_show')),
  notes text check (length(notes) <= 10000),
  idempotency_key text check (length(idempotency_key) between 1 and 255),
  created_at timestamptz not null default now(),
  constraint sessions_idempotency_key_unique unique (therapist_id, idempotency_key)
);

create index sessions_client_id_idx on public.sessions (client_id);
create index sessions_therapist_starts_idx on public.sessions (therapist_id, starts_at);

alter table public.sessions enable row level security;

create policy sessions_own_select on public.sessions for select to authenticated
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()));
create policy sessions_own_insert on public.sessions for insert to authenticated
  with check (
    therapist_id = (select auth.uid())
    and (select private.is_therapist())
    and exists (
      select 1 from public.clients c
       where c.id = client_id and c.therapist_id = (select auth.uid()) and c.status = 'active'
    )
  );
create policy sessions_own_update on public.sessions for update to authenticated
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()))
  with check (
    therapist_id = (select auth.uid())
    and exists (select 1 from public.clients c where c.id = client_id and c.therapist_id = (select auth.uid()))
  );
create policy sessions_own_delete on public.sessions for delete to authenticated
  using (therapist_id = (select auth.uid()) and (select private.is_therapist()));

-- Column privileges, and no TRUNCATE, TRIGGER or REFERENCES for the API roles (see public.clients).
revoke all on public.sessions from anon;
revoke insert, update on public.sessions from authenticated;
grant insert (client_id, therapist_id, starts_at, duration_minutes, status, notes, idempotency_key)
  on public.sessions to authenticated;
grant update (client_id, starts_at, duration_minutes, status, notes) on public.sessions to authenticated;
revoke truncate, trigger, references on public.sessions from anon, authenticated;

-- A session moved to another client must land on an active one (row level security makes it the
-- therapist's own); sessions of a client archived since stay editable, to cancel or complete them. It runs
-- as the caller: as a security definer it would see other therapists' clients, so moving a session to one
-- would fail differently from moving it to an id that does not exist.
create function private.session_moves_to_an_active_client() returns trigger
language plpgsql
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

-- What a request repeated with the same idempotency key answers: the session, or idempotency_mismatch when
-- the request differs from the one that created it.
create function private.idempotent_replay(
  p_session public.sessions,
  p_client_id uuid,
  p_starts_at timestamptz,
  p_duration_minutes integer,
  p_notes text
) returns jsonb
language sql
immutable
set search_path = ''
as $$
  select case
    when p_session.client_id = p_client_id
     and p_session.starts_at = p_starts_at
     and p_session.duration_minutes = p_duration_minutes
     and p_session.notes is not distinct from p_notes
    then jsonb_build_object('outcome', 'existing', 'session', to_jsonb(p_session))
    else jsonb_build_object('outcome', 'idempotency_mismatch')
  end
$$;

revoke all on function private.idempotent_replay(public.sessions, uuid, timestamptz, integer, text) from public;
grant execute on function private.idempotent_replay(public.sessions, uuid, timestamptz, integer, text) to authenticated;

-- Books a session as the calling therapist (row level security applies). Answers
-- {"outcome": created|existing|not_found|archived|idempotency_mismatch|not_a_therapist, "session": {...}}.
create function public.create_session(
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

revoke all on function public.create_session(uuid, timestamptz, integer, text, text) from public, anon;
grant execute on function public.create_session(uuid, timestamptz, integer, text, text) to authenticated;

-- Booking as the therapist in ONE statement. The functions' connection (service role) calls this with
-- the verified claims: it sets request.jwt.claims and, when Project A lacks the client, first writes the
-- copy `p_client` (one element of upsert_synced_clients' array) as the service role; then it switches to
-- `authenticated` for the rest of the transaction, as PostgREST does, and public.create_session runs under
-- row level security. A security invoker function may change the role; a definer one may not. Answers
-- create_session's JSON plus `client` (the upsert's row, when a copy was given); `email_conflict` when the
-- copy could not be made because another client has its email.
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

revoke all on function public.book_session_as(jsonb, uuid, timestamptz, integer, text, text, jsonb)
  from public, anon, authenticated;
grant execute on function public.book_session_as(jsonb, uuid, timestamptz, integer, text, text, jsonb)
  to service_role;

-- ===== schemas/40_sync.sql =====

-- Project A: writing Project B's clients. Project B's clients arrive as Project B states them ({id, profile,
-- updated_at}, what its client_states and client_page answer) and are mapped here, in SQL, so a page passes
-- through the functions as one JSON text.

-- The mapping of the design document, the one place that names Project A's synced columns:
-- name -> full_name ('Unnamed client' when blank), email, a note of what Project B knew, and every other
-- field of the profile as source_attributes.
create function private.synced_columns(p_profile jsonb, p_updated_at timestamptz)
returns table (full_name text, email text, notes text, source_attributes jsonb, source_updated_at timestamptz)
language sql
immutable
-- No `set search_path`: that would keep the planner from inlining it into the upsert (it names no table, and
-- pg_catalog's operators and functions come first whatever the path).
as $$
  select coalesce(nullif(btrim(p_profile ->> 'name'), ''), 'Unnamed client'),
         nullif(btrim(p_profile ->> 'email'), ''),
         'Synced from Project B.' || coalesce(' ' || nullif(concat_ws(', ',
           'Age: ' || (p_profile ->> 'age'),
           'Gender: ' || nullif(p_profile ->> 'gender_identity', '')), ''), ''),
         p_profile - 'name' - 'email',
         p_updated_at
$$;

revoke all on function private.synced_columns(jsonb, timestamptz) from public;
grant execute on function private.synced_columns(jsonb, timestamptz) to service_role;

-- Writes Project B's states of clients: `p_clients` is a JSON array of {id, profile, updated_at}. One answer
-- row per distinct id: inserted | updated | unchanged | conflict, with the conflict's kind (email | id) and,
-- for an email, the client holding it. Synced columns follow Project B; notes (after the insert), phone,
-- date_of_birth and therapist_id are Project A's and never touched (therapist_id is set on insert only,
-- when a booking copies the client). An older or equal state writes nothing; a newer one is written even
-- with the same content, so that the stored version moves with it. A row Project A created itself
-- (synced_from is null) is never written: conflict of kind id. An email another client holds is never
-- taken: conflict of kind email. A concurrent insert of that email still raises unique_violation
-- (clients_email_unique); the caller retries and then sees the holder here. Conflicts are recorded in
-- private.sync_conflicts, and a client written again resolves its open conflict (remember_outcomes).
create function public.upsert_synced_clients(p_clients jsonb, p_therapist_id uuid default null)
returns table (client_id uuid, outcome text, conflict text, other_client_id uuid)
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_ids uuid[];
  v_outcomes text[];
  v_kinds text[];
  v_others uuid[];
  v_native uuid[] := '{}';
begin
  with incoming as (
    select distinct on (s.id) s.id, m.*
      from jsonb_to_recordset(p_clients) as s (id uuid, profile jsonb, updated_at timestamptz)
      cross join lateral private.synced_columns(s.profile, s.updated_at) as m
     order by s.id, s.updated_at desc nulls last
  ), ranked as (  -- two incoming clients with one email: the first in id order takes it
    select i.*, case when i.email is not null then
             nullif(first_value(i.id) over (partition by lower(i.email) order by i.id), i.id) end as earlier
      from incoming i
  ), checked as (
    select r.*,
           case when holder.id is not null or r.earlier is not null then 'email' end as kind,
           coalesce(holder.id, r.earlier) as other
      from ranked r
      left join lateral (
        select c.id from public.clients c
         where r.email is not null and c.email is not null and lower(c.email) = lower(r.email) and c.id <> r.id
         limit 1
      ) holder on true
  ), written as (
    insert into public.clients as c
      (id, full_name, email, notes, therapist_id, status, synced_from,
       source_attributes, source_updated_at, last_synced_at)
    select k.id, k.full_name, k.email, k.notes, p_therapist_id, 'active', 'project_b',
           k.source_attributes, k.source_updated_at, now()
      from checked k
     where k.kind is null
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
    returning c.id, case when c.xmax = 0 then 'inserted' else 'updated' end as result
  )
  -- One aggregation pass: the four arrays are in the same (unspecified) order, which is all unnest needs.
  select array_agg(k.id),
         array_agg(case when k.kind is not null then 'conflict' else coalesce(w.result, 'unchanged') end),
         array_agg(k.kind),
         array_agg(k.other)
    into v_ids, v_outcomes, v_kinds, v_others
    from checked k
    left join written w on w.id = k.id;

  -- The upsert's guard skipped a row Project A created itself (one committed while this ran included: this
  -- new statement sees it): a conflict of kind id. Only an unchanged row can be one.
  if 'unchanged' = any(v_outcomes) then
    select coalesce(array_agg(n.id), '{}') into v_native
      from unnest(v_ids, v_outcomes) as u (id, outcome)
      join public.clients n on n.id = u.id and n.synced_from is null
     where u.outcome = 'unchanged';
  end if;

  return query
    select u.id,
           case when u.id = any(v_native) then 'conflict' else u.outcome end,
           case when u.id = any(v_native) then 'id' else u.kind end,
           u.other
      from unnest(v_ids, v_outcomes, v_kinds, v_others) as u (id, outcome, kind, other)
     order by u.id;

  perform private.remember_outcomes(v_ids, v_outcomes, v_kinds, v_others, v_native);
end;
$$;

revoke all on function public.upsert_synced_clients(jsonb, uuid) from public, anon, authenticated;
grant execute on function public.upsert_synced_clients(jsonb, uuid) to service_role;

-- Archives clients Project B no longer has: `p_absences` is a JSON array of {id, deleted_at} (the deletion
-- Project B recorded) or {id, absent_since} (when a read found no profile and no deletion is recorded).
-- Only synced, active clients whose stored state is older than the absence; never deleted, so their
-- sessions stay. A recorded deletion becomes the stored version, so that a state read before the deletion
-- and written after the archive cannot bring the client back; a profile that really returns is newer.
-- One answer row per id: archived or unchanged. Resolves the open conflicts of the absent clients.
create function public.archive_synced_clients(p_absences jsonb)
returns table (client_id uuid, outcome text)
language plpgsql
security invoker
set search_path = ''
as $$
begin
  return query
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
   order by a.id;
  perform private.resolve_conflicts(array(select a.id from jsonb_to_recordset(p_absences) as a (id uuid)));
end;
$$;

revoke all on function public.archive_synced_clients(jsonb) from public, anon, authenticated;
grant execute on function public.archive_synced_clients(jsonb) to service_role;

-- sync_client's one client for a therapist, in one statement: checks the therapist, writes Project B's state
-- (`p_client`, or archives for `p_absence`), claims the client if nobody has (as a booking would), and answers
-- not_found, like create_session, when it is not (or no longer) the therapist's.
create function public.sync_client_as(p_claims jsonb, p_client_id uuid, p_client jsonb, p_absence jsonb)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_uid uuid;
  v_sync jsonb;
  v_therapist uuid;
begin
  perform set_config('request.jwt.claims', p_claims::text, true);
  v_uid := auth.uid();
  if v_uid is null or not private.is_therapist() then
    return jsonb_build_object('outcome', 'not_a_therapist');
  end if;
  if p_client is not null then
    select to_jsonb(u) into v_sync
      from public.upsert_synced_clients(jsonb_build_array(p_client || jsonb_build_object('id', p_client_id)), v_uid) u;
  elsif p_absence is not null then
    select to_jsonb(a) into v_sync
      from public.archive_synced_clients(jsonb_build_array(p_absence || jsonb_build_object('id', p_client_id))) a;
  end if;
  update public.clients set therapist_id = v_uid, updated_at = now()
   where id = p_client_id and therapist_id is null and status = 'active';
  select therapist_id into v_therapist from public.clients where id = p_client_id;
  if v_therapist is distinct from v_uid then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  return jsonb_build_object('outcome', 'ok', 'sync', v_sync);
end;
$$;

revoke all on function public.sync_client_as(jsonb, uuid, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.sync_client_as(jsonb, uuid, jsonb, jsonb) to service_role;

-- ===== schemas/50_bulk_and_conflicts.sql =====

-- Project A: the sync in pages (backfill and reconcile) and the conflicts it meets. A page of Project B's
-- clients is written by one call of apply_sync_page; reconcile keeps a watermark; conflicts are remembered
-- until the client is written.

-- Conflicts the sync met: a client it could not write, why, and since when. One row per client. Open ones
-- are indexed by client id, the order reconcile retries them in.
create table private.sync_conflicts (
  client_id uuid primary key,
  kind text not null check (kind in ('email', 'id')),
  other_client_id uuid,
  first_seen timestamptz not null default now(),
  last_seen timestamptz not null default now(),
  resolved_at timestamptz
);
create index sync_conflicts_open_idx on private.sync_conflicts (client_id) where resolved_at is null;

-- How far reconcile has applied Project B's changes: (version, id) of the last change of a written page.
create table private.sync_state (
  name text primary key,
  watermark timestamptz not null,
  watermark_id uuid not null,
  updated_at timestamptz not null default now()
);

-- Records the conflicts of a write of clients and resolves the open ones of the clients it wrote (inserted
-- or updated: "unchanged" also answers a state older than the stored one, which says nothing about whether
-- the conflict cleared). Set-based, and nothing to do when the write met no conflict and none is open; a
-- security definer because the service role cannot write private.sync_conflicts.
create function private.remember_outcomes(
  p_ids uuid[], p_outcomes text[], p_kinds text[], p_others uuid[], p_native uuid[]
) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not ('conflict' = any(p_outcomes) or cardinality(p_native) > 0)
     and not exists (select 1 from private.sync_conflicts where resolved_at is null) then
    return;
  end if;
  with outcomes as (
    select u.id,
           case when u.id = any(p_native) then 'id' else u.kind end as kind,
           case when u.id = any(p_native) then null else u.other end as other,
           u.outcome = 'conflict' or u.id = any(p_native) as conflicted,
           u.outcome in ('inserted', 'updated') and not u.id = any(p_native) as written
      from unnest(p_ids, p_outcomes, p_kinds, p_others) as u (id, outcome, kind, other)
  ), recorded as (
    insert into private.sync_conflicts as s (client_id, kind, other_client_id)
    select o.id, o.kind, o.other from outcomes o where o.conflicted
    on conflict (client_id) do update set
      kind = excluded.kind,
      other_client_id = excluded.other_client_id,
      last_seen = now(),
      first_seen = case when s.resolved_at is null then s.first_seen else now() end,
      resolved_at = null
    returning 1
  )
  update private.sync_conflicts s set resolved_at = now()
    from outcomes o
   where s.client_id = o.id and o.written and s.resolved_at is null;
end;
$$;

revoke all on function private.remember_outcomes(uuid[], text[], text[], uuid[], uuid[]) from public;
grant execute on function private.remember_outcomes(uuid[], text[], text[], uuid[], uuid[]) to service_role;

-- A client Project B no longer has has no conflict left.
create function private.resolve_conflicts(p_ids uuid[]) returns void
language sql
security definer
set search_path = ''
as $$
  update private.sync_conflicts set resolved_at = now() where client_id = any(p_ids) and resolved_at is null
$$;

revoke all on function private.resolve_conflicts(uuid[]) from public;
grant execute on function private.resolve_conflicts(uuid[]) to service_role;

-- Moves a watermark forward, never back (a page read again with the overlap is older).
create function private.advance_watermark(p_name text, p_watermark timestamptz, p_watermark_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  insert into private.sync_state as s (name, watermark, watermark_id)
  values (p_name, p_watermark, p_watermark_id)
  on conflict (name) do update set watermark = excluded.watermark, watermark_id = excluded.watermark_id,
                                   updated_at = now()
  where (s.watermark, s.watermark_id) < (excluded.watermark, excluded.watermark_id)
$$;

revoke all on function private.advance_watermark(text, timestamptz, uuid) from public;
grant execute on function private.advance_watermark(text, timestamptz, uuid) to service_role;

-- One page of a backfill or reconcile in one statement: the clients Project B has (its JSON text passed
-- through unparsed), the ones it no longer has, and, for reconcile, the watermark to keep once they are
-- written. Answers the counts and the conflicts; a page without absences does not call archive_synced_clients.
create function public.apply_sync_page(
  p_clients jsonb,
  p_absences jsonb default '[]'::jsonb,
  p_state_name text default null,
  p_watermark timestamptz default null,
  p_watermark_id uuid default null
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_counts jsonb;
  v_conflicts jsonb;
  v_archived integer := 0;
  v_unchanged_absent integer := 0;
begin
  with applied as (select * from public.upsert_synced_clients(p_clients))
  select jsonb_build_object(
           'inserted', count(*) filter (where outcome = 'inserted'),
           'updated', count(*) filter (where outcome = 'updated'),
           'unchanged', count(*) filter (where outcome = 'unchanged'),
           'conflicts', count(*) filter (where outcome = 'conflict')),
         coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'kind', conflict,
                                               'other_client_id', other_client_id))
                    filter (where outcome = 'conflict'), '[]'::jsonb)
    into v_counts, v_conflicts
    from applied;

  if jsonb_array_length(p_absences) > 0 then
    select count(*) filter (where outcome = 'archived'), count(*) filter (where outcome = 'unchanged')
      into v_archived, v_unchanged_absent
      from public.archive_synced_clients(p_absences);
  end if;

  if p_state_name is not null and p_watermark is not null then
    perform private.advance_watermark(p_state_name, p_watermark, p_watermark_id);
  end if;

  return v_counts
    || jsonb_build_object('archived', v_archived,
                          'unchanged', (v_counts ->> 'unchanged')::integer + v_unchanged_absent,
                          'conflict_list', v_conflicts);
end;
$$;

-- Where reconcile stands: the watermark of `p_name`, or nothing before its first page.
create function public.sync_watermark(p_name text)
returns table (watermark timestamptz, watermark_id uuid)
language sql
stable
security definer
set search_path = ''
as $$
  select s.watermark, s.watermark_id from private.sync_state s where s.name = p_name
$$;

-- Open conflicts, oldest first seen first (what reconcile retries), or all of them for operators.
create function public.sync_conflicts(p_include_resolved boolean default false, p_limit integer default 1000)
returns table (client_id uuid, kind text, other_client_id uuid, first_seen timestamptz, last_seen timestamptz,
               resolved_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
  select c.client_id, c.kind, c.other_client_id, c.first_seen, c.last_seen, c.resolved_at
    from private.sync_conflicts c
   where p_include_resolved or c.resolved_at is null
   order by c.resolved_at nulls first, c.first_seen, c.client_id
   limit least(greatest(p_limit, 0), 5000)
$$;

-- Active clients synced from Project B, in id order after `p_after`: what a full reconcile sweeps. The bound
-- is an index condition (an `is null or` was a filter in the generic plan, so every page read from the first
-- id on); client ids are random v4 UUIDs, so the nil UUID is never one.
create function public.synced_client_ids(p_after uuid, p_limit integer)
returns setof uuid
language sql
stable
security invoker
set search_path = ''
as $$
  select c.id from public.clients c
   where c.synced_from = 'project_b' and c.status = 'active'
     and c.id > coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
   order by c.id
   limit least(greatest(p_limit, 0), 5000)
$$;

-- The ids of open conflicts in id order after `p_after`, so that reconcile retries every open conflict page
-- by page (a run that retried only the `limit` first seen left the others waiting behind them).
create function public.open_conflict_ids(p_after uuid, p_limit integer)
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select c.client_id from private.sync_conflicts c
   where c.resolved_at is null and c.client_id > coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
   order by c.client_id
   limit least(greatest(p_limit, 0), 5000)
$$;

revoke all on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid) from public, anon, authenticated;
revoke all on function public.sync_watermark(text) from public, anon, authenticated;
revoke all on function public.sync_conflicts(boolean, integer) from public, anon, authenticated;
revoke all on function public.synced_client_ids(uuid, integer) from public, anon, authenticated;
revoke all on function public.open_conflict_ids(uuid, integer) from public, anon, authenticated;
grant execute on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid) to service_role;
grant execute on function public.sync_watermark(text) to service_role;
grant execute on function public.sync_conflicts(boolean, integer) to service_role;
grant execute on function public.synced_client_ids(uuid, integer) to service_role;
grant execute on function public.open_conflict_ids(uuid, integer) to service_role;
