-- Project A: apply_sync_page does less beside the upsert itself, with the same answers: the answer arrays are
-- built in one pass (no sort per array), the native-client lookup runs only when some row came out unchanged,
-- the conflict bookkeeping only when there is a conflict to record or an open one to resolve, and a page
-- without absences does not call archive_synced_clients.

create or replace function public.upsert_synced_clients(p_clients jsonb, p_therapist_id uuid default null)
returns table (client_id uuid, outcome text, conflict text, other_client_id uuid)
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_ids uuid[];
  v_outcomes text[];
  v_kinds text[];
  v_others uuid[];
  v_native uuid[] := '{}';
begin
  with incoming as (
    select distinct on (s.id) s.id, m.*
      from jsonb_to_recordset(p_clients) as s (id uuid, profile jsonb, updated_at timestamptz)
      cross join lateral private.synced_columns(s.profile, s.updated_at) as m
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
         limit 1
      ) holder on true
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
      and (c.full_name, c.email, c.source_attributes, c.status)
          is distinct from (excluded.full_name, excluded.email, excluded.source_attributes, 'active')
    returning c.id, case when c.xmax = 0 then 'inserted' else 'updated' end as result
  )
  -- One aggregation pass: the four arrays are in the same (unspecified) order, which is all unnest needs.
  select array_agg(k.id),
         array_agg(case when k.kind is not null then 'conflict' else coalesce(w.result, 'unchanged') end),
         array_agg(k.kind),
         array_agg(k.other)
    into v_ids, v_outcomes, v_kinds, v_others
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
           u.other
      from unnest(v_ids, v_outcomes, v_kinds, v_others) as u (id, outcome, kind, other)
     order by u.id;

  perform private.remember_outcomes(v_ids, v_outcomes, v_kinds, v_others, v_native);
end;
$$;

-- As in 0005, and nothing to do (no round of unnest, insert and update) when the write met no conflict and
-- none is open.
create or replace function private.remember_outcomes(
  p_ids uuid[], p_outcomes text[], p_kinds text[], p_others uuid[], p_native uuid[]
) returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not ('conflict' = any(p_outcomes) or cardinality(p_native) > 0)
     and not exists (select 1 from private.sync_conflicts where resolved_at is null) then
    return;
  end if;
  with outcomes as (
    select u.id,
           case when u.id = any(p_native) then 'id' else u.kind end as kind,
           case when u.id = any(p_native) then null else u.other end as other,
           u.outcome = 'conflict' or u.id = any(p_native) as conflicted
      from unnest(p_ids, p_outcomes, p_kinds, p_others) as u (id, outcome, kind, other)
  ), recorded as (
    insert into private.sync_conflicts as s (client_id, kind, other_client_id)
    select o.id, o.kind, o.other from outcomes o where o.conflicted
    on conflict (client_id) do update set
      kind = excluded.kind,
      other_client_id = excluded.other_client_id,
      last_seen = now(),
      first_seen = case when s.resolved_at is null then s.first_seen else now() end,
      resolved_at = null
    returning 1
  )
  update private.sync_conflicts s set resolved_at = now()
    from outcomes o
   where s.client_id = o.id and not o.conflicted and s.resolved_at is null;
end;
$$;

-- As in 0005, archive_synced_clients called only for a page with absences.
create or replace function public.apply_sync_page(
  p_clients jsonb,
  p_absences jsonb default '[]'::jsonb,
  p_state_name text default null,
  p_watermark timestamptz default null,
  p_watermark_id uuid default null
) returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_counts jsonb;
  v_conflicts jsonb;
  v_archived integer := 0;
  v_unchanged_absent integer := 0;
begin
  with applied as (select * from public.upsert_synced_clients(p_clients))
  select jsonb_build_object(
           'inserted', count(*) filter (where outcome = 'inserted'),
           'updated', count(*) filter (where outcome = 'updated'),
           'unchanged', count(*) filter (where outcome = 'unchanged'),
           'conflicts', count(*) filter (where outcome = 'conflict')),
         coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'kind', conflict,
                                               'other_client_id', other_client_id))
                    filter (where outcome = 'conflict'), '[]'::jsonb)
    into v_counts, v_conflicts
    from applied;

  if jsonb_array_length(p_absences) > 0 then
    select count(*) filter (where outcome = 'archived'), count(*) filter (where outcome = 'unchanged')
      into v_archived, v_unchanged_absent
      from public.archive_synced_clients(p_absences);
  end if;

  if p_state_name is not null and p_watermark is not null then
    perform private.advance_watermark(p_state_name, p_watermark, p_watermark_id);
  end if;

  return v_counts
    || jsonb_build_object('archived', v_archived,
                          'unchanged', (v_counts ->> 'unchanged')::integer + v_unchanged_absent,
                          'conflict_list', v_conflicts);
end;
$$;
