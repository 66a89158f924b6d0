-- private.resolved_client_id takes the therapist from the request's claims instead of an argument: granted to
-- `authenticated`, the old form would answer another therapist's aliases to anyone who could call it.

-- The client the calling therapist (auth.uid(), from the request's claims) means by an id: the one an old id of
-- theirs was linked into, else the id as given. It takes no therapist as an argument, so that nobody can ask it
-- about another therapist's aliases.
create function private.resolved_client_id(p_client_id uuid) returns uuid
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(
    (select a.new_id from private.client_aliases a where a.old_id = p_client_id and a.therapist_id = auth.uid()),
    p_client_id)
$$;

revoke all on function private.resolved_client_id(uuid) from public;
grant execute on function private.resolved_client_id(uuid) to authenticated, service_role;

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
  if private.resolved_client_id(p_client_id) <> p_client_id then
    -- A linked client's old id: Project B's state was read for the old id, so the caller syncs the new one.
    return jsonb_build_object('outcome', 'moved', 'client_id', private.resolved_client_id(p_client_id));
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


drop function private.resolved_client_id(uuid, uuid);
