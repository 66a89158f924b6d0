-- Link suggestions: what a therapist may see is one view (private.visible_link_suggestions), which listing and
-- rejecting both use, so that reject_link answers not_found for a pair its therapist may not see (it confirmed
-- one before). A suggestion is recorded only for a client the upsert may write (not for an email or id conflict),
-- and its native client is locked against a concurrent delete (which failed the upsert with a foreign key error).

-- The suggestions a therapist may see and act on (list, link, reject): open, both clients active, their emails
-- still matching, and the Project B user nobody's client or the native client's therapist's.
create view private.visible_link_suggestions as
select l.client_id, l.project_b_user_id, l.since, n.therapist_id
  from private.link_suggestions l
  join public.clients n on n.id = l.client_id and n.synced_from is null and n.status = 'active'
  join public.clients b on b.id = l.project_b_user_id and b.synced_from is not null and b.status = 'active'
                        and (b.therapist_id is null or b.therapist_id = n.therapist_id)
 where l.closed_at is null and lower(n.email) = lower(b.email);

create or replace function public.upsert_synced_clients(p_clients jsonb, p_therapist_id uuid default null)
returns table (client_id uuid, outcome text, conflict text, other_client_id uuid, notices text[])
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_ids uuid[];
  v_outcomes text[];
  v_kinds text[];
  v_others uuid[];
  v_notices jsonb[];
  v_native uuid[] := '{}';
begin
  with incoming as (
    select distinct on (s.id) s.id, m.*
      from jsonb_to_recordset(p_clients) as s (id uuid, profile jsonb, updated_at timestamptz, version_clamped boolean)
      cross join lateral private.synced_columns(s.profile, s.updated_at, coalesce(s.version_clamped, false)) as m
     order by s.id, s.updated_at desc nulls last
  ), ranked as (  -- two incoming clients with one email: the first in id order takes it
    select i.*, case when i.email is not null then
             nullif(first_value(i.id) over (partition by lower(i.email) order by i.id), i.id) end as earlier
      from incoming i
  ), checked as (
    select r.*,
           case when holder.id is not null or r.earlier is not null then 'email' end as kind,
           coalesce(holder.id, r.earlier) as other
      from ranked r
      left join lateral (
        select c.id from public.clients c
         where r.email is not null and c.email is not null and lower(c.email) = lower(r.email) and c.id <> r.id
           and c.synced_from is not null
         limit 1
      ) holder on true
  ), suggested as (  -- FOR KEY SHARE: a native client deleted meanwhile is skipped, not a foreign key error
    insert into private.link_suggestions (client_id, project_b_user_id)
    select n.id, k.id
      from checked k
      join public.clients n
        on k.email is not null and n.email is not null and lower(n.email) = lower(k.email)
       and n.synced_from is null and n.id <> k.id
     where k.kind is null
       for key share of n
    on conflict do nothing
  ), written as (
    insert into public.clients as c
      (id, full_name, email, notes, therapist_id, status, synced_from,
       source_attributes, source_updated_at, last_synced_at)
    select k.id, k.full_name, k.email, k.notes, p_therapist_id, 'active', 'project_b',
           k.source_attributes, k.source_updated_at, now()
      from checked k
     where k.kind is null
    on conflict (id) do update set
      full_name = excluded.full_name,
      email = excluded.email,
      source_attributes = excluded.source_attributes,
      source_updated_at = excluded.source_updated_at,
      last_synced_at = excluded.last_synced_at,
      status = 'active',
      updated_at = now()
    where c.synced_from = 'project_b'  -- a row Project A created itself is never written
      and (c.source_updated_at is null or c.source_updated_at < excluded.source_updated_at)
    returning c.id, case when c.xmax = 0 then 'inserted' else 'updated' end as result
  )
  -- One aggregation pass: the five arrays are in the same (unspecified) order, which is all unnest needs.
  select array_agg(k.id),
         array_agg(case when k.kind is not null then 'conflict' else coalesce(w.result, 'unchanged') end),
         array_agg(k.kind),
         array_agg(k.other),
         array_agg(to_jsonb(k.notices))
    into v_ids, v_outcomes, v_kinds, v_others, v_notices
    from checked k
    left join written w on w.id = k.id;

  -- The upsert's guard skipped a row Project A created itself (one committed while this ran included: this
  -- new statement sees it): a conflict of kind id. Only an unchanged row can be one.
  if 'unchanged' = any(v_outcomes) then
    select coalesce(array_agg(n.id), '{}') into v_native
      from unnest(v_ids, v_outcomes) as u (id, outcome)
      join public.clients n on n.id = u.id and n.synced_from is null
     where u.outcome = 'unchanged';
  end if;

  return query
    select u.id,
           case when u.id = any(v_native) then 'conflict' else u.outcome end,
           case when u.id = any(v_native) then 'id' else u.kind end,
           u.other,
           array(select jsonb_array_elements_text(u.notices))
      from unnest(v_ids, v_outcomes, v_kinds, v_others, v_notices) as u (id, outcome, kind, other, notices)
     order by u.id;

  perform private.remember_outcomes(v_ids, v_outcomes, v_kinds, v_others, v_native);
end;
$$;

comment on function public.upsert_synced_clients(jsonb, uuid) is
  'Writes Project B''s states of clients ([{id, profile, updated_at}]): only a newer state, never a client Project A created itself, never an email another synced client holds; records and resolves conflicts, and suggests linking a native client with the same email. One row per id: inserted, updated, unchanged or conflict (kind email or id), and the notices of what was bounded on the way in.';


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
        select v.client_id, v.project_b_user_id, v.since
          from private.visible_link_suggestions v
         where v_uid is null or v.therapist_id = v_uid
         order by v.since, v.client_id, v.project_b_user_id
         limit least(greatest(p_limit, 1), 5000)
      ) s
  ), '[]'::jsonb));
end;
$$;

comment on function public.link_suggestions_for(jsonb, integer) is
  'The open link suggestions (a native client and a Project B user with its email), oldest first, at most 5000: the therapist''s of the verified claims, or all without claims. Answers {outcome: ok, suggestions: [{client_id, project_b_user_id, since}]} or {outcome: not_a_therapist}.';


create or replace function public.reject_link_as(p_claims jsonb, p_client_id uuid, p_project_b_user_id uuid)
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
     set closed_at = now(), closed_as = 'rejected'
   where l.client_id = p_client_id and l.project_b_user_id = p_project_b_user_id and l.closed_at is null
     and exists (select 1 from private.visible_link_suggestions v
                  where v.client_id = l.client_id and v.project_b_user_id = l.project_b_user_id
                    and (v_uid is null or v.therapist_id = v_uid))
  returning l.closed_as into v_closed_as;
  if not found then  -- rejected before by the caller: the same answer again
    select l.closed_as into v_closed_as
      from private.link_suggestions l join public.clients n on n.id = l.client_id
     where l.client_id = p_client_id and l.project_b_user_id = p_project_b_user_id and l.closed_as = 'rejected'
       and (v_uid is null or n.therapist_id = v_uid);
  end if;
  return jsonb_build_object('outcome', case when v_closed_as = 'rejected' then 'rejected' else 'not_found' end);
end;
$$;

comment on function public.reject_link_as(jsonb, uuid, uuid) is
  'Rejects a link suggestion for the therapist of the verified claims (their own native client), or for the service role without claims: it never opens again. Answers {outcome: rejected | not_found | not_a_therapist}.';

