-- Project A: the sync in pages. Project B's clients arrive as Project B states them ({id, profile,
-- updated_at}, what its client_states and client_page answer) and are mapped here, in SQL, so a page passes
-- through the functions as one JSON text; conflicts are remembered; reconcile keeps a watermark.

-- Conflicts the sync met: a client it could not write, why, and since when. One row per client.
create table private.sync_conflicts (
  client_id uuid primary key,
  kind text not null check (kind in ('email', 'id')),
  other_client_id uuid,
  first_seen timestamptz not null default now(),
  last_seen timestamptz not null default now(),
  resolved_at timestamptz
);
create index sync_conflicts_open_idx on private.sync_conflicts (last_seen) where resolved_at is null;

-- How far reconcile has applied Project B's changes: (version, id) of the last change of a written page.
create table private.sync_state (
  name text primary key,
  watermark timestamptz not null,
  watermark_id uuid not null,
  updated_at timestamptz not null default now()
);

-- The mapping of the design document, the one place that names Project A's synced columns:
-- name -> full_name ('Unnamed client' when blank), email, a note of what Project B knew, and every other
-- field of the profile as source_attributes.
create function private.synced_columns(p_profile jsonb, p_updated_at timestamptz)
returns table (full_name text, email text, notes text, source_attributes jsonb, source_updated_at timestamptz)
language sql
immutable
-- No `set search_path`: that would keep the planner from inlining it into the upsert (it names no table, and
-- pg_catalog's operators and functions come first whatever the path).
as $$
  select coalesce(nullif(btrim(p_profile ->> 'name'), ''), 'Unnamed client'),
         nullif(btrim(p_profile ->> 'email'), ''),
         'Synced from Project B.' || coalesce(' ' || nullif(concat_ws(', ',
           'Age: ' || (p_profile ->> 'age'),
           'Gender: ' || nullif(p_profile ->> 'gender_identity', '')), ''), ''),
         p_profile - 'name' - 'email',
         p_updated_at
$$;

revoke all on function private.synced_columns(jsonb, timestamptz) from public;
grant execute on function private.synced_columns(jsonb, timestamptz) to service_role;

-- Writes Project B's states of clients: `p_clients` is a JSON array of {id, profile, updated_at}. One answer
-- row per distinct id: inserted | updated | unchanged | conflict, with the conflict's kind (email | id) and,
-- for an email, the client holding it. Synced columns follow Project B; notes (after the insert), phone,
-- date_of_birth and therapist_id are Project A's and never touched (therapist_id is set on insert only,
-- when a booking copies the client). An older or equal state writes nothing. A row Project A created
-- itself (synced_from is null) is never written: conflict of kind id. An email another client holds is
-- never taken: conflict of kind email. A concurrent insert of that email still raises unique_violation
-- (clients_email_unique); the caller retries and then sees the holder here. Conflicts are recorded in
-- private.sync_conflicts, and a client written (or found equal) again resolves its open conflict.
drop function public.upsert_synced_clients(jsonb, uuid);

create function public.upsert_synced_clients(p_clients jsonb, p_therapist_id uuid default null)
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
  v_native uuid[];
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
  select array_agg(k.id order by k.id),
         array_agg(case when k.kind is not null then 'conflict' else coalesce(w.result, 'unchanged') end
                   order by k.id),
         array_agg(k.kind order by k.id),
         array_agg(k.other order by k.id)
    into v_ids, v_outcomes, v_kinds, v_others
    from checked k
    left join written w on w.id = k.id;

  -- The upsert's guard skipped a row Project A created itself (one committed while this ran included: this
  -- new statement sees it): a conflict of kind id.
  select array_agg(n.id) into v_native
    from unnest(v_ids, v_outcomes) as u (id, outcome)
    join public.clients n on n.id = u.id and n.synced_from is null
   where u.outcome = 'unchanged';

  return query
    select u.id,
           case when u.id = any(coalesce(v_native, '{}')) then 'conflict' else u.outcome end,
           case when u.id = any(coalesce(v_native, '{}')) then 'id' else u.kind end,
           u.other
      from unnest(v_ids, v_outcomes, v_kinds, v_others) as u (id, outcome, kind, other);

  perform private.remember_outcomes(v_ids, v_outcomes, v_kinds, v_others, coalesce(v_native, '{}'));
end;
$$;

-- Records the conflicts of a write of clients and resolves the open ones of the clients it wrote (or found
-- equal). Set-based; a security definer because the service role cannot write private.sync_conflicts.
create function private.remember_outcomes(
  p_ids uuid[], p_outcomes text[], p_kinds text[], p_others uuid[], p_native uuid[]
) returns void
language sql
security definer
set search_path = ''
as $$
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
   where s.client_id = o.id and not o.conflicted and s.resolved_at is null
$$;

revoke all on function private.remember_outcomes(uuid[], text[], text[], uuid[], uuid[]) from public;
grant execute on function private.remember_outcomes(uuid[], text[], text[], uuid[], uuid[]) to service_role;

-- A client Project B no longer has has no conflict left.
create function private.resolve_conflicts(p_ids uuid[]) returns void
language sql
security definer
set search_path = ''
as $$
  update private.sync_conflicts set resolved_at = now() where client_id = any(p_ids) and resolved_at is null
$$;

revoke all on function private.resolve_conflicts(uuid[]) from public;
grant execute on function private.resolve_conflicts(uuid[]) to service_role;

-- Archives clients Project B no longer has (see 0003), and resolves their open conflicts.
create or replace function public.archive_synced_clients(p_absences jsonb)
returns table (client_id uuid, outcome text)
language plpgsql
security invoker
set search_path = ''
as $$
begin
  return query
  with absent as (
    select distinct on (a.id) a.id, a.deleted_at, coalesce(a.deleted_at, a.absent_since) as absent_since
      from jsonb_to_recordset(p_absences) as a (id uuid, deleted_at timestamptz, absent_since timestamptz)
     order by a.id, coalesce(a.deleted_at, a.absent_since) desc
  ), archived as (
    update public.clients c
       set status = 'archived', source_updated_at = coalesce(a.deleted_at, c.source_updated_at),
           last_synced_at = now(), updated_at = now()
      from absent a
     where c.id = a.id and c.synced_from = 'project_b' and c.status = 'active'
       and (c.source_updated_at is null or c.source_updated_at < a.absent_since)
    returning c.id
  )
  select a.id, case when exists (select 1 from archived x where x.id = a.id) then 'archived' else 'unchanged' end
    from absent a
   order by a.id;
  perform private.resolve_conflicts(array(select a.id from jsonb_to_recordset(p_absences) as a (id uuid)));
end;
$$;

-- Moves a watermark forward, never back (a page read again with the overlap is older).
create function private.advance_watermark(p_name text, p_watermark timestamptz, p_watermark_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  insert into private.sync_state as s (name, watermark, watermark_id)
  values (p_name, p_watermark, p_watermark_id)
  on conflict (name) do update set watermark = excluded.watermark, watermark_id = excluded.watermark_id,
                                   updated_at = now()
  where (s.watermark, s.watermark_id) < (excluded.watermark, excluded.watermark_id)
$$;

revoke all on function private.advance_watermark(text, timestamptz, uuid) from public;
grant execute on function private.advance_watermark(text, timestamptz, uuid) to service_role;

-- One page of a backfill or reconcile in one statement: the clients Project B has (its JSON text passed
-- through unparsed), the ones it no longer has, and, for reconcile, the watermark to keep once they are
-- written. Answers the counts and the conflicts.
create function public.apply_sync_page(
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
  v_archived integer;
  v_unchanged_absent integer;
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

  select count(*) filter (where outcome = 'archived'), count(*) filter (where outcome = 'unchanged')
    into v_archived, v_unchanged_absent
    from public.archive_synced_clients(p_absences);

  if p_state_name is not null and p_watermark is not null then
    perform private.advance_watermark(p_state_name, p_watermark, p_watermark_id);
  end if;

  return v_counts
    || jsonb_build_object('archived', v_archived,
                          'unchanged', (v_counts ->> 'unchanged')::integer + v_unchanged_absent,
                          'conflict_list', v_conflicts);
end;
$$;

-- Where reconcile stands: the watermark of `p_name`, or nothing before its first page.
create function public.sync_watermark(p_name text)
returns table (watermark timestamptz, watermark_id uuid)
language sql
stable
security definer
set search_path = ''
as $$
  select s.watermark, s.watermark_id from private.sync_state s where s.name = p_name
$$;

-- Open conflicts, oldest first seen first (what reconcile retries), or all of them for operators.
create function public.sync_conflicts(p_include_resolved boolean default false, p_limit integer default 1000)
returns table (client_id uuid, kind text, other_client_id uuid, first_seen timestamptz, last_seen timestamptz,
               resolved_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
  select c.client_id, c.kind, c.other_client_id, c.first_seen, c.last_seen, c.resolved_at
    from private.sync_conflicts c
   where p_include_resolved or c.resolved_at is null
   order by c.resolved_at nulls first, c.first_seen, c.client_id
   limit least(greatest(p_limit, 0), 5000)
$$;

-- Active clients synced from Project B, in id order after `p_after`: what a full reconcile sweeps.
create function public.synced_client_ids(p_after uuid, p_limit integer)
returns setof uuid
language sql
stable
security invoker
set search_path = ''
as $$
  select c.id from public.clients c
   where c.synced_from = 'project_b' and c.status = 'active' and (p_after is null or c.id > p_after)
   order by c.id
   limit least(greatest(p_limit, 0), 5000)
$$;

-- sync_client's one client for a therapist, in one statement: checks the therapist, writes Project B's state
-- (`p_client`, or archives for `p_absence`), claims the client if nobody has (as a booking would), and answers
-- not_found, like create_session, when it is not (or no longer) the therapist's.
create function public.sync_client_as(p_claims jsonb, p_client_id uuid, p_client jsonb, p_absence jsonb)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
  v_uid uuid;
  v_sync jsonb;
  v_therapist uuid;
begin
  perform set_config('request.jwt.claims', p_claims::text, true);
  v_uid := auth.uid();
  if v_uid is null or not private.is_therapist() then
    return jsonb_build_object('outcome', 'not_a_therapist');
  end if;
  if p_client is not null then
    select to_jsonb(u) into v_sync
      from public.upsert_synced_clients(jsonb_build_array(p_client || jsonb_build_object('id', p_client_id)), v_uid) u;
  elsif p_absence is not null then
    select to_jsonb(a) into v_sync
      from public.archive_synced_clients(jsonb_build_array(p_absence || jsonb_build_object('id', p_client_id))) a;
  end if;
  update public.clients set therapist_id = v_uid, updated_at = now()
   where id = p_client_id and therapist_id is null and status = 'active';
  select therapist_id into v_therapist from public.clients where id = p_client_id;
  if v_therapist is distinct from v_uid then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  return jsonb_build_object('outcome', 'ok', 'sync', v_sync);
end;
$$;

revoke all on function public.sync_client_as(jsonb, uuid, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.sync_client_as(jsonb, uuid, jsonb, jsonb) to service_role;

revoke all on function public.upsert_synced_clients(jsonb, uuid) from public, anon, authenticated;
revoke all on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid) from public, anon, authenticated;
revoke all on function public.sync_watermark(text) from public, anon, authenticated;
revoke all on function public.sync_conflicts(boolean, integer) from public, anon, authenticated;
revoke all on function public.synced_client_ids(uuid, integer) from public, anon, authenticated;
grant execute on function public.upsert_synced_clients(jsonb, uuid) to service_role;
grant execute on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid) to service_role;
grant execute on function public.sync_watermark(text) to service_role;
grant execute on function public.sync_conflicts(boolean, integer) to service_role;
grant execute on function public.synced_client_ids(uuid, integer) to service_role;
