-- The sync's status for operators: each bulk page records what it did to its run (apply_sync_page's new p_run),
-- and public.sync_status answers the watermark, the last runs, the open conflicts and link suggestions.

-- Project A: what an operator reads of the sync (sync_client's status mode, `python -m ops.cli status`).

-- The last run of each bulk kind, as its pages record it (apply_sync_page's p_run): a new run (a backfill or
-- reconcile from the start, a scheduled reconcile, the queueing of a sharded backfill in `parts` ranges) replaces
-- the row; what goes on from a cursor adds its counts to it; it is finished once each of its parts has reached its
-- end. Counts only, no ids.
create table private.sync_runs (
  kind text primary key check (kind in ('backfill', 'reconcile')),
  started_at timestamptz not null,
  last_page_at timestamptz not null,
  finished_at timestamptz,
  parts integer not null check (parts >= 1),
  parts_done integer not null check (parts_done >= 0),
  counts jsonb not null
);

-- Two runs' counts ({inserted, updated, unchanged, archived, conflicts}) added up.
create function private.added_counts(p_a jsonb, p_b jsonb) returns jsonb
language sql
immutable
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(k, coalesce((p_a ->> k)::bigint, 0) + coalesce((p_b ->> k)::bigint, 0)),
                  '{}'::jsonb)
    from (select jsonb_object_keys(coalesce(p_a, '{}'::jsonb) || coalesce(p_b, '{}'::jsonb)) as k) keys
$$;

revoke all on function private.added_counts(jsonb, jsonb) from public;

-- Records what a page of a backfill or reconcile did (apply_sync_page's p_run, {kind, new_run, finished, parts}):
-- a new run starts the kind's row again (in `parts` parts), else the page's counts add to it; `finished` says a
-- part reached its end. The row is made first and then locked, so concurrent first pages queue on it.
create function private.record_sync_run(p_run jsonb, p_counts jsonb) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_kind text := p_run ->> 'kind';
  v_run private.sync_runs;
begin
  insert into private.sync_runs (kind, started_at, last_page_at, finished_at, parts, parts_done, counts)
  values (v_kind, now(), now(), null, 1, 0, '{}'::jsonb)
  on conflict (kind) do nothing;
  select * into v_run from private.sync_runs where kind = v_kind for update;
  if coalesce((p_run ->> 'new_run')::boolean, false) then
    v_run.started_at := now();
    v_run.finished_at := null;
    v_run.parts := greatest(coalesce((p_run ->> 'parts')::integer, 1), 1);
    v_run.parts_done := 0;
    v_run.counts := coalesce(p_counts, '{}'::jsonb);
  else
    v_run.counts := private.added_counts(v_run.counts, p_counts);
  end if;
  v_run.last_page_at := now();
  if coalesce((p_run ->> 'finished')::boolean, false) then
    v_run.parts_done := least(v_run.parts_done + 1, v_run.parts);
    if v_run.parts_done = v_run.parts then
      v_run.finished_at := now();
    end if;
  end if;
  update private.sync_runs
     set started_at = v_run.started_at, last_page_at = v_run.last_page_at, finished_at = v_run.finished_at,
         parts = v_run.parts, parts_done = v_run.parts_done, counts = v_run.counts
   where kind = v_kind;
end;
$$;

revoke all on function private.record_sync_run(jsonb, jsonb) from public;

-- The sync as Project A sees it: reconcile's watermark (the last change of Project B it applied), the last
-- backfill and reconcile (null before the first), the open conflicts and the link suggestions therapists can act
-- on (private.visible_link_suggestions). Counts and times only.
create function public.sync_status() returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'watermark', (select s.watermark from private.sync_state s where s.name = 'reconcile'),
    'watermark_id', (select s.watermark_id from private.sync_state s where s.name = 'reconcile'),
    'last_reconcile', (select to_jsonb(r) - 'kind' from private.sync_runs r where r.kind = 'reconcile'),
    'last_backfill', (select to_jsonb(r) - 'kind' from private.sync_runs r where r.kind = 'backfill'),
    'open_conflicts', (select count(*) from private.sync_conflicts c where c.resolved_at is null),
    'open_link_suggestions', (select count(*) from private.visible_link_suggestions))
$$;

comment on function public.sync_status() is
  'The sync as Project A sees it: {watermark, watermark_id, last_reconcile, last_backfill ({started_at, last_page_at, finished_at, parts, parts_done, counts} or null), open_conflicts, open_link_suggestions}.';

revoke all on function public.sync_status() from public, anon, authenticated;
grant execute on function public.sync_status() to service_role, client_sync;

drop function public.apply_sync_page_dry_run(jsonb, jsonb, text, timestamptz, uuid);
drop function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid);

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

revoke all on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid, jsonb) from public, anon, authenticated;
grant execute on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid, jsonb) to service_role, client_sync;

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
