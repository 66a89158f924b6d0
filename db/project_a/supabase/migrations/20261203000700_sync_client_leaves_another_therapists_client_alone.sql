-- sync_client for a therapist neither writes nor locks another therapist's client: it answers not_found at once;
-- and it archives only an active client, so that an unknown or archived id skips the archive too (the caller's
-- own archived client answers unchanged). Every not_found then costs what an unknown id's does (a write, or the
-- archive's work, would make it slower).

create or replace function public.sync_client_as(p_claims jsonb, p_client_id uuid, p_client jsonb, p_absence jsonb)
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
  'sync_client''s one client for a therapist, in one statement: writes Project B''s state (or archives an active client for an absence), claims the client if nobody has, and answers ok with the write''s row, not_found or not_a_therapist.';
