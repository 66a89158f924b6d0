-- The functions' login, client_sync, no longer acts as service_role (db/client_sync_role.sql takes that
-- membership away): it calls the SQL surface as itself, with no privilege on any table. Each function it calls
-- that must see past row level security becomes a security definer (owned, as every function here, by the
-- tables' owner, the role that runs the migrations; search_path already pinned), and client_sync may execute
-- them. The booking keeps acting as the therapist: book_session_as stays a security invoker, since only an
-- invoker may switch to `authenticated`, and its privileged first half, the therapist check and the copy of
-- Project B's client, moves to the security definer copy_client_for_booking.

alter function public.upsert_synced_clients(jsonb, uuid) security definer;
alter function public.archive_synced_clients(jsonb) security definer;
alter function public.sync_client_as(jsonb, uuid, jsonb, jsonb) security definer;
alter function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid) security definer;
alter function public.synced_client_ids(uuid, integer) security definer;

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

grant execute on function public.book_session_as(jsonb, uuid, timestamptz, integer, text, text, jsonb) to client_sync;
grant execute on function public.upsert_synced_clients(jsonb, uuid) to client_sync;
grant execute on function public.archive_synced_clients(jsonb) to client_sync;
grant execute on function public.sync_client_as(jsonb, uuid, jsonb, jsonb) to client_sync;
grant execute on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid) to client_sync;
grant execute on function public.sync_watermark(text) to client_sync;
grant execute on function public.sync_conflicts(boolean, integer) to client_sync;
grant execute on function public.synced_client_ids(uuid, integer) to client_sync;
grant execute on function public.open_conflict_ids(uuid, integer) to client_sync;
