-- Project A: therapists' clients and the sessions booked with them.

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
create index clients_therapist_id_idx on public.clients (therapist_id);

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

alter table public.clients enable row level security;
alter table public.sessions enable row level security;

create policy clients_own_select on public.clients for select to authenticated
  using (therapist_id = auth.uid());
create policy clients_own_insert on public.clients for insert to authenticated
  with check (therapist_id = auth.uid());
create policy clients_own_update on public.clients for update to authenticated
  using (therapist_id = auth.uid()) with check (therapist_id = auth.uid());
create policy clients_own_delete on public.clients for delete to authenticated
  using (therapist_id = auth.uid());

create policy sessions_own_select on public.sessions for select to authenticated
  using (therapist_id = auth.uid());
create policy sessions_own_insert on public.sessions for insert to authenticated
  with check (
    therapist_id = auth.uid()
    and exists (
      select 1 from public.clients c
      where c.id = client_id and c.therapist_id = auth.uid() and c.status = 'active'
    )
  );
create policy sessions_own_update on public.sessions for update to authenticated
  using (therapist_id = auth.uid()) with check (therapist_id = auth.uid());
create policy sessions_own_delete on public.sessions for delete to authenticated
  using (therapist_id = auth.uid());

-- Not exposed through PostgREST: helpers that need more than the caller's rights.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- The caller's access to a client, claiming it when no therapist has it yet.
-- Returns 'ok', 'missing', 'forbidden' or 'archived'; locks the row until commit
-- so that an archive cannot slip between this check and the session insert.
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
  if v_uid is null then
    raise exception 'no authenticated therapist' using errcode = '28000';
  end if;

  update public.clients
     set therapist_id = v_uid, updated_at = now()
   where id = p_client_id and therapist_id is null and status = 'active';

  select therapist_id, status into v_therapist, v_status
    from public.clients where id = p_client_id
    for share;

  if not found then
    return 'missing';
  elsif v_therapist is distinct from v_uid then
    return 'forbidden';
  elsif v_status = 'archived' then
    return 'archived';
  end if;
  return 'ok';
end;
$$;

revoke all on function private.client_access(uuid) from public;
grant execute on function private.client_access(uuid) to authenticated;

-- Books a session as the calling therapist (row level security applies).
-- Returns {"outcome": created|existing|missing|forbidden|archived|idempotency_mismatch, "session": {...}}.
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
  if v_uid is null then
    raise exception 'no authenticated therapist' using errcode = '28000';
  end if;

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

revoke all on function public.create_session(uuid, timestamptz, integer, text, text) from public, anon;
grant execute on function public.create_session(uuid, timestamptz, integer, text, text) to authenticated;
