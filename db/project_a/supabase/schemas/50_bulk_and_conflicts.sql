-- Project A: the sync in pages (backfill and reconcile) and the conflicts it meets. A page of Project B's
-- clients is written by one call of apply_sync_page; reconcile keeps a watermark; conflicts are remembered
-- until the client is written. What the functions call here is a security definer (see 40_sync.sql).

-- Conflicts the sync met: a client it could not write, why, and since when. One row per client. Open ones
-- are indexed by client id, the order reconcile retries them in.
create table private.sync_conflicts (
  client_id uuid primary key,
  kind text not null check (kind in ('email', 'id')),
  other_client_id uuid,
  first_seen timestamptz not null default now(),
  last_seen timestamptz not null default now(),
  resolved_at timestamptz
);
create index sync_conflicts_open_idx on private.sync_conflicts (client_id) where resolved_at is null;

-- How far reconcile has applied Project B's changes: (version, id) of the last change of a written page.
create table private.sync_state (
  name text primary key,
  watermark timestamptz not null,
  watermark_id uuid not null,
  updated_at timestamptz not null default now()
);

-- Records the conflicts of a write of clients and resolves the open ones of the clients it wrote (inserted
-- or updated: "unchanged" also answers a state older than the stored one, which says nothing about whether
-- the conflict cleared). Set-based, and nothing to do when the write met no conflict and none is open; a
-- security definer because the service role cannot write private.sync_conflicts.
create function private.remember_outcomes(
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

-- Moves a watermark forward, never back (a page read again with the overlap is older), and never past now plus
-- the skew (private.kept_version): a version run ahead would make reconcile miss every later change.
create function private.advance_watermark(p_name text, p_watermark timestamptz, p_watermark_id uuid) returns void
language sql
security definer
set search_path = ''
as $$
  insert into private.sync_state as s (name, watermark, watermark_id)
  select p_name, private.kept_version(p_watermark, now()), p_watermark_id
   where p_watermark > '-infinity'
  on conflict (name) do update set watermark = excluded.watermark, watermark_id = excluded.watermark_id,
                                   updated_at = now()
  where (s.watermark, s.watermark_id) < (excluded.watermark, excluded.watermark_id)
$$;

revoke all on function private.advance_watermark(text, timestamptz, uuid) from public;
grant execute on function private.advance_watermark(text, timestamptz, uuid) to service_role;

-- One page of a backfill or reconcile in one statement: the clients Project B has (its JSON text passed
-- through unparsed), the ones it no longer has, and, for reconcile, the watermark to keep once they are
-- written; with `p_run` ({kind, new_run, finished, parts}), what the page did is added to its run
-- (private.record_sync_run, 80_status.sql). Answers the counts, the conflicts and the clients whose data was
-- bounded on the way in (notices); a page without absences does not call archive_synced_clients.
create function public.apply_sync_page(
  p_clients jsonb,
  p_absences jsonb default '[]'::jsonb,
  p_state_name text default null,
  p_watermark timestamptz default null,
  p_watermark_id uuid default null,
  p_run jsonb default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_counts jsonb;
  v_conflicts jsonb;
  v_notices jsonb;
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
                    filter (where outcome = 'conflict'), '[]'::jsonb),
         coalesce(jsonb_agg(jsonb_build_object('client_id', client_id, 'outcome', outcome, 'notices', notices))
                    filter (where cardinality(notices) > 0), '[]'::jsonb)
    into v_counts, v_conflicts, v_notices
    from applied;

  if jsonb_array_length(p_absences) > 0 then
    select count(*) filter (where outcome = 'archived'), count(*) filter (where outcome = 'unchanged')
      into v_archived, v_unchanged_absent
      from public.archive_synced_clients(p_absences);
  end if;

  if p_state_name is not null and p_watermark is not null then
    perform private.advance_watermark(p_state_name, p_watermark, p_watermark_id);
  end if;

  if p_run is not null then
    perform private.record_sync_run(p_run, v_counts || jsonb_build_object(
      'archived', v_archived, 'unchanged', (v_counts ->> 'unchanged')::integer + v_unchanged_absent));
  end if;

  return v_counts
    || jsonb_build_object('archived', v_archived,
                          'unchanged', (v_counts ->> 'unchanged')::integer + v_unchanged_absent,
                          'conflict_list', v_conflicts,
                          'notices', v_notices);
end;
$$;

comment on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid, jsonb) is
  'Writes one page of a backfill or reconcile: Project B''s clients (its JSON passed through), the absent ones, for reconcile the watermark to keep, and with p_run what the page did to its run. Answers the counts, the conflicts and the clients bounded on the way in (notices).';

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

comment on function public.sync_watermark(text) is
  'Where reconcile p_name stands: the (version, id) of the last change it applied; no row before its first page.';

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

comment on function public.sync_conflicts(boolean, integer) is
  'The conflicts the sync met, open ones first and oldest first seen first; resolved ones too when asked; at most 5000.';

-- Active clients synced from Project B, in id order after `p_after`: what a full reconcile sweeps. The bound
-- is an index condition (an `is null or` was a filter in the generic plan, so every page read from the first
-- id on); client ids are random v4 UUIDs, so the nil UUID is never one.
create function public.synced_client_ids(p_after uuid, p_limit integer)
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select c.id from public.clients c
   where c.synced_from = 'project_b' and c.status = 'active'
     and c.id > coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
   order by c.id
   limit least(greatest(p_limit, 0), 5000)
$$;

comment on function public.synced_client_ids(uuid, integer) is
  'Ids of the active clients synced from Project B, in id order after p_after, at most 5000: what a full reconcile sweeps.';

-- The ids of open conflicts in id order after `p_after`, so that reconcile retries every open conflict page
-- by page (a run that retried only the `limit` first seen left the others waiting behind them).
create function public.open_conflict_ids(p_after uuid, p_limit integer)
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

comment on function public.open_conflict_ids(uuid, integer) is
  'Ids of the clients with an open conflict, in id order after p_after, at most 5000: what reconcile retries.';

revoke all on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid, jsonb) from public, anon, authenticated;
revoke all on function public.sync_watermark(text) from public, anon, authenticated;
revoke all on function public.sync_conflicts(boolean, integer) from public, anon, authenticated;
revoke all on function public.synced_client_ids(uuid, integer) from public, anon, authenticated;
revoke all on function public.open_conflict_ids(uuid, integer) from public, anon, authenticated;
grant execute on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid, jsonb) to service_role, client_sync;

-- apply_sync_page without keeping anything: what it would write, counted, then rolled back (a subtransaction
-- that ends in an error this function catches). A dry run over either backend: PostgREST's rpc commits what it
-- runs, so the transaction cannot be rolled back from the outside.
create function public.apply_sync_page_dry_run(
  p_clients jsonb,
  p_absences jsonb default '[]'::jsonb,
  p_state_name text default null,
  p_watermark timestamptz default null,
  p_watermark_id uuid default null,
  p_run jsonb default null
) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_answer jsonb;
begin
  begin
    v_answer := public.apply_sync_page(p_clients, p_absences, p_state_name, p_watermark, p_watermark_id, p_run);
    raise exception 'dry run: rolled back' using errcode = 'P0D01';
  exception when sqlstate 'P0D01' then
    null;
  end;
  return v_answer;
end;
$$;

comment on function public.apply_sync_page_dry_run(jsonb, jsonb, text, timestamptz, uuid, jsonb) is
  'apply_sync_page''s answer for a page, with nothing kept: the writes are rolled back. sync_client''s dry runs.';

revoke all on function public.apply_sync_page_dry_run(jsonb, jsonb, text, timestamptz, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.apply_sync_page_dry_run(jsonb, jsonb, text, timestamptz, uuid, jsonb) to service_role, client_sync;
grant execute on function public.sync_watermark(text) to service_role, client_sync;
grant execute on function public.sync_conflicts(boolean, integer) to service_role, client_sync;
grant execute on function public.synced_client_ids(uuid, integer) to service_role, client_sync;
grant execute on function public.open_conflict_ids(uuid, integer) to service_role, client_sync;
