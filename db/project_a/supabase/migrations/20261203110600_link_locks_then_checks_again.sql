-- link_client_as locks the Project B user's row, the native client's and the suggestion in the upsert's order
-- (no deadlock with a sync of the same user), then checks the suggestion again: a reject, an archive or another
-- therapist's booking that came first wins. A copy the upsert could not write (an email conflict) is not linked.

create or replace function public.link_client_as(
  p_claims jsonb, p_client_id uuid, p_project_b_user_id uuid, p_email_confirmed boolean, p_client jsonb
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid;
  v_native public.clients;
  v_written text;
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
  -- The user's row before the native one, as the upsert takes them (no deadlock with it), and then the
  -- suggestion; once all three are held, the suggestion must still be one the caller may act on (a reject, an
  -- archive or another therapist's booking may have come first).
  perform 1 from public.clients where id = p_project_b_user_id for update;
  select * into v_native from public.clients where id = p_client_id for update;
  perform 1 from private.link_suggestions
   where client_id = p_client_id and project_b_user_id = p_project_b_user_id for update;
  perform 1 from private.visible_link_suggestions v
   where v.client_id = p_client_id and v.project_b_user_id = p_project_b_user_id
     and (v_uid is null or v.therapist_id = v_uid);
  if not found or p_client is null then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  if not p_email_confirmed then
    return jsonb_build_object('outcome', 'email_not_confirmed');
  end if;

  select u.outcome into v_written
    from public.upsert_synced_clients(
           jsonb_build_array(p_client || jsonb_build_object('id', p_project_b_user_id)), v_native.therapist_id) u;
  if v_written = 'conflict' then  -- Project B's email is held by another synced client now
    return jsonb_build_object('outcome', 'not_found');
  end if;
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

