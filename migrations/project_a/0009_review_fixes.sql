-- Project A: fixes found in review.
--
-- 1. A newer state of a client with the same content as the stored one is written (its version with it). The
--    upsert used to skip it, leaving the stored version behind, so that a late, older state with other
--    content then passed the version guard and overwrote it.
-- 2. Only a client written (inserted or updated) resolves its open conflict. "unchanged" also answers a state
--    older than the stored one, which says nothing about whether the conflict cleared.
-- 3. The session-move check runs as the caller: as a security definer it saw other therapists' clients, so
--    moving a session to one failed differently from moving it to an id that does not exist.
-- 4. synced_client_ids and open_conflict_ids bound their pages with an index condition (`is null or` was a
--    filter in the generic plan, so every page read from the first id on), and open conflicts are indexed by
--    client id, the order the retry pages in.
-- 5. The API roles lose TRUNCATE, TRIGGER and REFERENCES on the tables they reach, which Supabase's default
--    privileges grant: TRUNCATE empties a table past row level security, and a trigger a user attaches runs
--    its code as whoever writes the table next (a security definer function's owner included).

-- 1.
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

-- 2.
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
           u.outcome = 'conflict' or u.id = any(p_native) as conflicted,
           u.outcome in ('inserted', 'updated') and not u.id = any(p_native) as written
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
   where s.client_id = o.id and o.written and s.resolved_at is null;
end;
$$;

-- 3.
alter function private.session_moves_to_an_active_client() security invoker;

-- 4. Client ids are random v4 UUIDs, so the nil UUID is never one.
create or replace function public.synced_client_ids(p_after uuid, p_limit integer)
returns setof uuid
language sql
stable
security invoker
set search_path = ''
as $$
  select c.id from public.clients c
   where c.synced_from = 'project_b' and c.status = 'active'
     and c.id > coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
   order by c.id
   limit least(greatest(p_limit, 0), 5000)
$$;

create or replace function public.open_conflict_ids(p_after uuid, p_limit integer)
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select c.client_id from private.sync_conflicts c
   where c.resolved_at is null and c.client_id > coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
   order by c.client_id
   limit least(greatest(p_limit, 0), 5000)
$$;

drop index private.sync_conflicts_open_idx;
create index sync_conflicts_open_idx on private.sync_conflicts (client_id) where resolved_at is null;

-- 5.
revoke truncate, trigger, references on public.clients, public.sessions, public.therapists from anon, authenticated;
