-- sync_client's reject_link mode: a therapist closes a link suggestion of their own client for good.

-- Closes the suggestion of `p_client_id` (a native client) and `p_project_b_user_id` as rejected, for the
-- therapist of the verified claims `p_claims` (their own client only), or for the service role without claims.
-- Answers {outcome: rejected} (again for one rejected already: the same request twice answers the same),
-- not_found (no such suggestion of the caller's, open or rejected; one answer whoever's the client is), or
-- not_a_therapist. A rejected pair never opens again.
create function public.reject_link_as(p_claims jsonb, p_client_id uuid, p_project_b_user_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid;
  v_closed_as text;
begin
  if p_claims is not null then
    perform set_config('request.jwt.claims', p_claims::text, true);
    v_uid := auth.uid();
    if v_uid is null or not private.is_therapist() then
      return jsonb_build_object('outcome', 'not_a_therapist');
    end if;
  end if;
  update private.link_suggestions l
     set closed_at = coalesce(l.closed_at, now()), closed_as = coalesce(l.closed_as, 'rejected')
    from public.clients n
   where l.client_id = p_client_id and l.project_b_user_id = p_project_b_user_id
     and (l.closed_at is null or l.closed_as = 'rejected')
     and n.id = l.client_id and (v_uid is null or n.therapist_id = v_uid)
  returning l.closed_as into v_closed_as;
  return jsonb_build_object('outcome', case when v_closed_as = 'rejected' then 'rejected' else 'not_found' end);
end;
$$;

comment on function public.reject_link_as(jsonb, uuid, uuid) is
  'Rejects a link suggestion for the therapist of the verified claims (their own native client), or for the service role without claims: it never opens again. Answers {outcome: rejected | not_found | not_a_therapist}.';

revoke all on function public.reject_link_as(jsonb, uuid, uuid) from public, anon, authenticated;
grant execute on function public.reject_link_as(jsonb, uuid, uuid) to service_role, client_sync;
