-- Email uniqueness by kind, and link suggestions in place of a native client's email conflict.
-- Before: one practice-wide unique index on lower(email). A therapist's insert or update of their own client
-- answered 23505 when another therapist's client had the email (telling them it exists), and a native client
-- with a Project B user's email kept that user out of Project A (a conflict of kind email for every booking).
-- After: synced clients are unique by email among themselves, native clients per therapist; a Project B user
-- with a native client's email is written, and the native client's therapist gets a link suggestion.
-- Open email conflicts whose holder was a native client resolve on reconcile's next retry of them.

create unique index clients_synced_email_unique on public.clients (lower(email))
  where email is not null and synced_from is not null;
create unique index clients_native_email_unique on public.clients (lower(email), therapist_id)
  where email is not null and synced_from is null;
drop index public.clients_email_unique;

create table private.link_suggestions (
  client_id uuid not null references public.clients (id) on delete cascade,
  project_b_user_id uuid not null,
  since timestamptz not null default now(),
  closed_at timestamptz,
  closed_as text check (closed_as in ('linked', 'rejected')),
  primary key (client_id, project_b_user_id),
  check ((closed_at is null) = (closed_as is null))
);
create index link_suggestions_open_idx on private.link_suggestions (since) where closed_at is null;

-- The open suggestions, oldest first: of the therapist of the verified claims `p_claims` (not_a_therapist
-- unless they are one), or all of them without claims (the service role). Ids and since only: nothing of the
-- Project B user beyond the match is shown before linking.
create function public.link_suggestions_for(p_claims jsonb default null, p_limit integer default 1000)
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

revoke all on function public.link_suggestions_for(jsonb, integer) from public, anon, authenticated;
grant execute on function public.link_suggestions_for(jsonb, integer) to service_role, client_sync;

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
  ), suggested as (
    insert into private.link_suggestions (client_id, project_b_user_id)
    select n.id, r.id
      from ranked r
      join public.clients n
        on r.email is not null and n.email is not null and lower(n.email) = lower(r.email)
       and n.synced_from is null and n.id <> r.id
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

