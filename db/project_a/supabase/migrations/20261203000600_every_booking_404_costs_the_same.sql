-- Every 404 of a booking costs the same round trips: book_session_as tells the functions when Project A holds the
-- id elsewhere (another therapist's client, or its own), so that they read Project B as for any other not_found
-- but make no second call to Project A with a copy that could not help.

-- Whether Project A holds this id for another therapist than `p_therapist_id`, or as an archived client of its
-- own that nobody has: then no copy from Project B can make it theirs. Only the functions' statements ask (as
-- the service role, never a user): book_session_as's not_found then spares the second call to Project A, and
-- sync_client_as writes nothing, so that these 404s cost what an unknown id's does.
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

create or replace function public.book_session_as(
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
  v_held_elsewhere boolean := false;
  v_result jsonb;
begin
  perform set_config('request.jwt.claims', p_claims::text, true);
  if auth.uid() is null or not private.is_therapist() then
    return jsonb_build_object('outcome', 'not_a_therapist');
  end if;

  if p_client is null then
    -- Asked before the claim, as the service role, on every call without a copy: the same work for any answer.
    v_held_elsewhere := private.held_elsewhere(p_client_id, auth.uid());
  else
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
  elsif v_held_elsewhere and v_result ->> 'outcome' = 'not_found' then
    v_result := v_result || jsonb_build_object('held_elsewhere', true);
  end if;
  return v_result || jsonb_strip_nulls(jsonb_build_object('client', v_copy));
end;
$$;

comment on function public.book_session_as(jsonb, uuid, timestamptz, integer, text, text, jsonb) is
  'create_session for the functions, in one statement: takes the verified claims, first copies the client from Project B (p_client) when Project A lacks it, then books as the therapist. Answers create_session''s JSON plus the copy''s row as client; email_conflict when another client holds the copy''s email; held_elsewhere on a not_found no copy could help.';
