-- A link suggestion whose Project B user another therapist has as a client is not shown: its id would tell the
-- native client's therapist of another therapist's client.

-- The open suggestions, oldest first: of the therapist of the verified claims `p_claims` (not_a_therapist
-- unless they are one), or all of them without claims (the service role). Ids and since only: nothing of the
-- Project B user beyond the match is shown before linking.
create or replace function public.link_suggestions_for(p_claims jsonb default null, p_limit integer default 1000)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_uid uuid;
begin
  if p_claims is not null then
    perform set_config('request.jwt.claims', p_claims::text, true);
    v_uid := auth.uid();
    if v_uid is null or not private.is_therapist() then
      return jsonb_build_object('outcome', 'not_a_therapist');
    end if;
  end if;
  return jsonb_build_object('outcome', 'ok', 'suggestions', coalesce((
    select jsonb_agg(jsonb_build_object('client_id', s.client_id, 'project_b_user_id', s.project_b_user_id,
                                        'since', s.since) order by s.since, s.client_id, s.project_b_user_id)
      from (
        select l.client_id, l.project_b_user_id, l.since
          from private.link_suggestions l
          join public.clients n on n.id = l.client_id and n.synced_from is null and n.status = 'active'
          join public.clients b on b.id = l.project_b_user_id and b.synced_from is not null and b.status = 'active'
                                and (b.therapist_id is null or b.therapist_id = n.therapist_id)
         where l.closed_at is null and lower(n.email) = lower(b.email)
           and (v_uid is null or n.therapist_id = v_uid)
         order by l.since, l.client_id, l.project_b_user_id
         limit least(greatest(p_limit, 1), 5000)
      ) s
  ), '[]'::jsonb));
end;
$$;

comment on function public.link_suggestions_for(jsonb, integer) is
  'The open link suggestions (a native client and a Project B user with its email), oldest first, at most 5000: the therapist''s of the verified claims, or all without claims. Answers {outcome: ok, suggestions: [{client_id, project_b_user_id, since}]} or {outcome: not_a_therapist}.';
