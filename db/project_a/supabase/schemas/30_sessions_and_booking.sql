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
  p_client_id := private.resolved_client_id(p_client_id);  -- a linked client's old id means the new one
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

comment on function public.create_session(uuid, timestamptz, integer, text, text) is
  'Books a session with a client as the calling therapist, under row level security, and claims a client no therapist has yet. Answers {outcome: created | existing | not_found (no client of the caller''s, one answer whoever''s the id is) | archived (the caller''s own client, archived) | idempotency_mismatch | not_a_therapist, session}.';

revoke all on function public.create_session(uuid, timestamptz, integer, text, text) from public, anon;
grant execute on function public.create_session(uuid, timestamptz, integer, text, text) to authenticated;

-- The privileged half of a booking, before book_session_as turns into the therapist: answers
-- {"outcome": "not_a_therapist"} unless the user of request.jwt.claims is a therapist; otherwise, when Project B's
-- client `p_client` is given (one element of upsert_synced_clients' array), writes it as that therapist's
-- client unless Project A has it already, and answers {"client": the upsert's row, "copy_refused": true when
-- another client's email kept the copy out}; without a copy, {"held_elsewhere": private.held_elsewhere(...)}.
-- A security definer (owned by the tables' owner, search_path
-- pinned): the functions' login has no privilege on the tables.
create function public.copy_client_for_booking(p_client_id uuid, p_client jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_copy jsonb;
begin
  if v_uid is null or not private.is_therapist() then
    return jsonb_build_object('outcome', 'not_a_therapist');
  end if;
  if p_client is null then
    -- Asked before the claim, on every call without a copy: the same work for any answer.
    return jsonb_build_object('copy_refused', false, 'held_elsewhere', private.held_elsewhere(p_client_id, v_uid));
  end if;
  select to_jsonb(u) into v_copy
    from public.upsert_synced_clients(jsonb_build_array(p_client || jsonb_build_object('id', p_client_id)), v_uid) u;
  return jsonb_build_object(
    'client', v_copy,
    'copy_refused', coalesce(v_copy ->> 'conflict' = 'email', false)
                    and not exists (select 1 from public.clients where id = p_client_id)
  );
end;
$$;

comment on function public.copy_client_for_booking(uuid, jsonb) is
  'book_session_as''s privileged half, before it acts as the therapist: not_a_therapist unless the claims'' user is one; then writes the copy of Project B''s client (p_client) as theirs when Project A lacks it. Answers the upsert''s row as client, and copy_refused when another client holds its email; without a copy, held_elsewhere when Project A holds the id for someone else.';

revoke all on function public.copy_client_for_booking(uuid, jsonb) from public, anon, authenticated;
grant execute on function public.copy_client_for_booking(uuid, jsonb) to service_role, client_sync;

-- copy_client_for_booking for the client backend, which books with the therapist's token over PostgREST but
-- writes the copy with the service-role key: it takes the verified claims, as book_session_as does.
create function public.copy_client_as(p_claims jsonb, p_client_id uuid, p_client jsonb default null)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
begin
  perform set_config('request.jwt.claims', p_claims::text, true);
  return public.copy_client_for_booking(p_client_id, p_client);
end;
$$;

comment on function public.copy_client_as(jsonb, uuid, jsonb) is
  'copy_client_for_booking with the verified claims of the therapist (p_claims), for the client backend: not_a_therapist, or the copy''s row as client and copy_refused; without a copy, held_elsewhere.';

revoke all on function public.copy_client_as(jsonb, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.copy_client_as(jsonb, uuid, jsonb) to service_role;

-- Booking as the therapist in ONE statement. The functions' login (client_sync) calls this with the verified
-- claims: it sets request.jwt.claims, has copy_client_for_booking check the therapist and write the copy
-- `p_client` when Project A lacks the client, then switches to `authenticated` for the rest of the transaction,
-- as PostgREST does, and public.create_session runs under row level security. A security invoker function may
-- change the role (the session's login must be a member of `authenticated`); a definer one may not. Answers
-- create_session's JSON plus `client` (the upsert's row, when a copy was given); `email_conflict` when the
-- copy could not be made because another client has its email. A not_found without a copy adds
-- `held_elsewhere: true` when no copy could help (private.held_elsewhere), for the functions only.
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
  v_result jsonb;
begin
  perform set_config('request.jwt.claims', p_claims::text, true);
  v_copy := public.copy_client_for_booking(p_client_id, p_client);
  if v_copy ->> 'outcome' = 'not_a_therapist' then
    return v_copy;
  end if;

  perform set_config('role', 'authenticated', true);
  v_result := public.create_session(p_client_id, p_starts_at, p_duration_minutes, p_notes, p_idempotency_key);
  if (v_copy ->> 'copy_refused')::boolean and v_result ->> 'outcome' = 'not_found' then
    v_result := jsonb_build_object('outcome', 'email_conflict');
  elsif (v_copy ->> 'held_elsewhere')::boolean and v_result ->> 'outcome' = 'not_found' then
    v_result := v_result || jsonb_build_object('held_elsewhere', true);
  end if;
  return v_result || jsonb_strip_nulls(jsonb_build_object('client', v_copy -> 'client'));
end;
$$;

comment on function public.book_session_as(jsonb, uuid, timestamptz, integer, text, text, jsonb) is
  'create_session for the functions, in one statement: takes the verified claims, first copies the client from Project B (p_client) when Project A lacks it, then books as the therapist. Answers create_session''s JSON plus the copy''s row as client; email_conflict when another client holds the copy''s email; held_elsewhere on a not_found no copy could help.';

revoke all on function public.book_session_as(jsonb, uuid, timestamptz, integer, text, text, jsonb)
  from public, anon, authenticated;
grant execute on function public.book_session_as(jsonb, uuid, timestamptz, integer, text, text, jsonb)
  to service_role, client_sync;
