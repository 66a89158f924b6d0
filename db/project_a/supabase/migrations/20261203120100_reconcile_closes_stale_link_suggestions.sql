-- Reconcile keeps link suggestions current: the sync closes a suggestion as stale when the Project B user's email
-- no longer matches the native client's, and opens it again when they match again.

alter table private.link_suggestions drop constraint link_suggestions_closed_as_check;
alter table private.link_suggestions
  add constraint link_suggestions_closed_as_check check (closed_as in ('linked', 'rejected', 'stale'));

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
  ), stale as (  -- a user whose email no longer matches the native client's: the suggestion closes
    update private.link_suggestions l
       set closed_at = now(), closed_as = 'stale'
      from checked k, public.clients n
     where k.kind is null and l.project_b_user_id = k.id and l.closed_at is null
       and n.id = l.client_id and lower(n.email) is distinct from lower(k.email)
  ), suggested as (  -- FOR KEY SHARE: a native client deleted meanwhile is skipped, not a foreign key error
    insert into private.link_suggestions as l (client_id, project_b_user_id)
    select n.id, k.id
      from checked k
      join public.clients n
        on k.email is not null and n.email is not null and lower(n.email) = lower(k.email)
       and n.synced_from is null and n.id <> k.id
     where k.kind is null
       for key share of n
    on conflict on constraint link_suggestions_pkey do update  -- matching again: a stale one opens again
      set since = now(), closed_at = null, closed_as = null
      where l.closed_as = 'stale'
  ), written as (
    insert into public.clients as c
      (id, full_name, email, notes, therapist_id, status, synced_from,
       source_attributes, source_updated_at, last_synced_at)
    select k.id, k.full_name, k.email, k.notes, p_therapist_id, 'active', 'project_b',
           k.source_attributes, k.source_updated_at, now()
      from checked k
     where k.kind is null
    on conflict (id) do update set
      synced_from = 'project_b',
      full_name = excluded.full_name,
      email = excluded.email,
      source_attributes = excluded.source_attributes,
      source_updated_at = excluded.source_updated_at,
      last_synced_at = excluded.last_synced_at,
      status = 'active',
      updated_at = now()
    where (c.synced_from = 'project_b'  -- a row Project A created itself is never written, unless it was invited
           or exists (select 1 from private.client_invites i where i.client_id = c.id))
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
