-- Linking: a native client becomes the Project B user of its link suggestion (sync_client's link mode). The old
-- id stays an alias for its therapist: create_session and sync_client_as resolve it.

-- The old ids of linked clients: a native client's id (old_id) now means the Project B user's (new_id), for the
-- therapist who linked it only.
create table private.client_aliases (
  old_id uuid primary key,
  new_id uuid not null references public.clients (id) on delete cascade,
  therapist_id uuid not null,
  linked_at timestamptz not null default now()
);
create index client_aliases_new_id_idx on private.client_aliases (new_id);

-- The client a therapist's id means: the one an old id of theirs was linked into, else the id as given.
create function private.resolved_client_id(p_client_id uuid, p_therapist_id uuid) returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    (select a.new_id from private.client_aliases a where a.old_id = p_client_id and a.therapist_id = p_therapist_id),
    p_client_id)
$$;

revoke all on function private.resolved_client_id(uuid, uuid) from public;
grant execute on function private.resolved_client_id(uuid, uuid) to authenticated, service_role;

-- Links a native client to the Project B user of an open suggestion, in one transaction, for the therapist of
-- the verified claims `p_claims` (their own client), or for the service role without claims: the user's copy
-- (`p_client`, Project B's state, written as sync writes it) becomes the therapist's client and takes the native
-- client's own fields (phone, date of birth, notes; the copy's where the native has none); its sessions and
-- aliases follow the new id; the old id stays an alias for its therapist; the native row is removed. Answers
-- {outcome: linked, client_id} or not_found (no such open suggestion of the caller's, the user gone from Project
-- B, or another therapist's client), email_not_confirmed (checked after not_found: nobody learns more), or
-- not_a_therapist.
create function public.link_client_as(
  p_claims jsonb, p_client_id uuid, p_project_b_user_id uuid, p_email_confirmed boolean, p_client jsonb
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid;
  v_native public.clients;
  v_user public.clients;
begin
  if p_claims is not null then
    perform set_config('request.jwt.claims', p_claims::text, true);
    v_uid := auth.uid();
    if v_uid is null or not private.is_therapist() then
      return jsonb_build_object('outcome', 'not_a_therapist');
    end if;
  end if;
  perform 1 from private.visible_link_suggestions v
   where v.client_id = p_client_id and v.project_b_user_id = p_project_b_user_id
     and (v_uid is null or v.therapist_id = v_uid);
  if not found then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  select * into v_native from public.clients where id = p_client_id for update;
  if not found then  -- deleted meanwhile
    return jsonb_build_object('outcome', 'not_found');
  end if;
  select * into v_user from public.clients where id = p_project_b_user_id for update;
  if p_client is null or (found and (v_user.synced_from is null or v_user.therapist_id <> v_native.therapist_id)) then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  if not p_email_confirmed then
    return jsonb_build_object('outcome', 'email_not_confirmed');
  end if;

  perform public.upsert_synced_clients(
    jsonb_build_array(p_client || jsonb_build_object('id', p_project_b_user_id)), v_native.therapist_id);
  update public.clients u
     set therapist_id = v_native.therapist_id,
         phone = coalesce(v_native.phone, u.phone),
         date_of_birth = coalesce(v_native.date_of_birth, u.date_of_birth),
         notes = coalesce(v_native.notes, u.notes),
         updated_at = now()
   where u.id = p_project_b_user_id and u.synced_from is not null and lower(u.email) = lower(v_native.email);
  if not found then  -- the copy could not be written (another synced client holds the email), or Project B's
                     -- email no longer matches the native client's
    return jsonb_build_object('outcome', 'not_found');
  end if;
  update public.sessions set client_id = p_project_b_user_id where client_id = p_client_id;
  update private.client_aliases set new_id = p_project_b_user_id where new_id = p_client_id;
  insert into private.client_aliases (old_id, new_id, therapist_id)
  values (p_client_id, p_project_b_user_id, v_native.therapist_id);
  delete from public.clients where id = p_client_id;  -- its suggestions go with it
  return jsonb_build_object('outcome', 'linked', 'client_id', p_project_b_user_id);
end;
$$;

comment on function public.link_client_as(jsonb, uuid, uuid, boolean, jsonb) is
  'Links a native client to the Project B user of an open suggestion, for the therapist of the verified claims (or the service role without claims): sessions follow the new id, the old id stays an alias for its therapist. Answers {outcome: linked, client_id} | not_found | email_not_confirmed | not_a_therapist.';

revoke all on function public.link_client_as(jsonb, uuid, uuid, boolean, jsonb) from public, anon, authenticated;
grant execute on function public.link_client_as(jsonb, uuid, uuid, boolean, jsonb) to service_role, client_sync;

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
  p_client_id := private.resolved_client_id(p_client_id, v_uid);  -- a linked client's old id means the new one
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


create or replace function public.sync_client_as(p_claims jsonb, p_client_id uuid, p_client jsonb, p_absence jsonb)
returns jsonb
language plpgsql
security definer
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
  if private.resolved_client_id(p_client_id, v_uid) <> p_client_id then
    -- A linked client's old id: Project B's state was read for the old id, so the caller syncs the new one.
    return jsonb_build_object('outcome', 'moved', 'client_id', private.resolved_client_id(p_client_id, v_uid));
  end if;
  if private.held_elsewhere(p_client_id, v_uid) then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  if p_client is not null then
    select to_jsonb(u) into v_sync
      from public.upsert_synced_clients(jsonb_build_array(p_client || jsonb_build_object('id', p_client_id)), v_uid) u;
  elsif p_absence is not null and exists (select 1 from public.clients where id = p_client_id and status = 'active') then
    select to_jsonb(a) into v_sync
      from public.archive_synced_clients(jsonb_build_array(p_absence || jsonb_build_object('id', p_client_id))) a;
  end if;
  update public.clients set therapist_id = v_uid, updated_at = now()
   where id = p_client_id and therapist_id is null and status = 'active';
  select therapist_id into v_therapist from public.clients where id = p_client_id;
  if v_therapist is distinct from v_uid then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  -- The caller's own client with nothing to archive (archived already) is unchanged.
  return jsonb_build_object('outcome', 'ok',
                            'sync', coalesce(v_sync, jsonb_build_object('client_id', p_client_id, 'outcome', 'unchanged')));
end;
$$;

comment on function public.sync_client_as(jsonb, uuid, jsonb, jsonb) is
  'sync_client''s one client for a therapist, in one statement: writes Project B''s state (or archives an active client for an absence), claims the client if nobody has, and answers ok with the write''s row, not_found or not_a_therapist; moved with the new id for an old id of the therapist''s linked client.';

