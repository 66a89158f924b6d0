-- create_session answers client_archived only to the therapist whose client it is: a client archived before
-- anyone claimed it is not_found, like an absent id or another therapist's. And only the caller's own row is
-- locked, so that another therapist's client costs no write either.

create or replace function private.client_access(p_client_id uuid) returns text
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

comment on function public.create_session(uuid, timestamptz, integer, text, text) is
  'Books a session with a client as the calling therapist, under row level security, and claims a client no therapist has yet. Answers {outcome: created | existing | not_found (no client of the caller''s, one answer whoever''s the id is) | archived (the caller''s own client, archived) | idempotency_mismatch | not_a_therapist, session}.';
