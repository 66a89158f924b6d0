-- Profile data is bounded on its way into Project A: full_name at most 200 characters, source_attributes at
-- most 4 KiB, avatar_url only as an https URL of at most 2,048 characters; versions as kept (private.kept_version).
-- upsert_synced_clients and apply_sync_page say which clients were bounded (notices), for the functions' logs.
-- synced_columns and upsert_synced_clients answer more columns: dropped and created again, with their grants.

drop function private.synced_columns(jsonb, timestamptz);
drop function public.upsert_synced_clients(jsonb, uuid);

-- The avatar is kept only as an https URL of at most 2,048 characters, with a host and no user part, spaces or
-- control characters (the therapists' app may render it as a link or an image); any other is dropped (null).
create function private.with_safe_avatar(p_attributes jsonb) returns jsonb
language sql
immutable
as $$
  select case when coalesce(jsonb_typeof(p_attributes -> 'avatar_url'), 'null') <> 'null'
               and not (jsonb_typeof(p_attributes -> 'avatar_url') = 'string'
                        and char_length(p_attributes ->> 'avatar_url') <= 2048
                        and p_attributes ->> 'avatar_url'
                            ~* '^https://[^[:space:][:cntrl:]/?#\\@]+([/?#][^[:space:][:cntrl:]]*)?$')
              then jsonb_set(p_attributes, '{avatar_url}', 'null'::jsonb)
              else p_attributes end
$$;

-- source_attributes within 4 KiB (4,096 bytes of its JSON text): when larger, the attributes that do not fit are
-- dropped, the largest first, so the most of them are kept and the document stays valid JSON. Each member
-- takes its key, its value and 4 bytes of punctuation (`": "`, and `, ` or the braces).
create function private.within_4kib(p_attributes jsonb) returns jsonb
language sql
immutable
as $$
  select case when octet_length(p_attributes::text) <= 4096 then p_attributes
         else (select coalesce(jsonb_object_agg(m.key, m.value), '{}'::jsonb)
                 from (select e.key, e.value,
                              sum(octet_length(to_jsonb(e.key)::text) + octet_length(e.value::text) + 4)
                                over (order by octet_length(to_jsonb(e.key)::text) + octet_length(e.value::text),
                                               e.key) as running
                         from jsonb_each(p_attributes) e) m
                where m.running <= 4096) end
$$;

-- The mapping of the design document, the one place that names Project A's synced columns:
-- name -> full_name ('Unnamed client' when blank, at most 200 characters), email, a note of what Project B
-- knew, and every other field of the profile as source_attributes (a safe avatar_url, at most 4 KiB), with the
-- version as kept. `notices` names what was bounded: version_clamped (here, or by Project B's read:
-- p_version_clamped), full_name_cut, avatar_url_dropped, source_attributes_cut. Text is cut at a character.
create function private.synced_columns(p_profile jsonb, p_updated_at timestamptz,
                                       p_version_clamped boolean default false)
returns table (full_name text, email text, notes text, source_attributes jsonb, source_updated_at timestamptz,
               notices text[])
language sql
stable
-- No `set search_path`: that would keep the planner from inlining it into the upsert (it names no table, and
-- pg_catalog's operators and functions come first whatever the path). Once inlined, each reference to a lateral
-- column would repeat its expression: `offset 0` keeps the attributes and their bounded form computed once a
-- row, and the common cases (a past version, no avatar, under 4 KiB) skip the helpers (bench/README.md).
as $$
  select rtrim(left(n.name, 200)),
         nullif(btrim(p_profile ->> 'email'), ''),
         'Synced from Project B.' || coalesce(' ' || nullif(concat_ws(', ',
           'Age: ' || (b.bounded ->> 'age'),
           'Gender: ' || nullif(b.bounded ->> 'gender_identity', '')), ''), ''),
         b.bounded,
         v.version,
         array_remove(array[
           case when p_version_clamped or v.version is distinct from p_updated_at then 'version_clamped' end,
           case when char_length(n.name) > 200 then 'full_name_cut' end,
           case when b.attributes -> 'avatar_url' is distinct from p_profile -> 'avatar_url' then 'avatar_url_dropped' end,
           case when b.bounded is distinct from b.attributes then 'source_attributes_cut' end
         ], null)
    from (select coalesce(nullif(btrim(p_profile ->> 'name'), ''), 'Unnamed client') as name) n,
         (select case when isfinite(p_updated_at) and p_updated_at <= now() then p_updated_at
                      else private.kept_version(p_updated_at, now()) end as version) v,
         lateral (select a.attributes,
                         case when octet_length(a.attributes::text) <= 4096 then a.attributes
                              else private.within_4kib(a.attributes) end as bounded
                    from (select case when p_profile -> 'avatar_url' is null or p_profile -> 'avatar_url' = 'null'::jsonb
                                      then p_profile - 'name' - 'email'
                                      else private.with_safe_avatar(p_profile - 'name' - 'email') end as attributes
                          offset 0) a
                  offset 0) b
$$;

revoke all on function private.with_safe_avatar(jsonb) from public;
revoke all on function private.within_4kib(jsonb) from public;
revoke all on function private.synced_columns(jsonb, timestamptz, boolean) from public;
grant execute on function private.with_safe_avatar(jsonb) to service_role;
grant execute on function private.within_4kib(jsonb) to service_role;
grant execute on function private.synced_columns(jsonb, timestamptz, boolean) to service_role;

-- Writes Project B's states of clients: `p_clients` is a JSON array of {id, profile, updated_at}. One answer
-- row per distinct id: inserted | updated | unchanged | conflict, with the conflict's kind (email | id) and,
-- for an email, the client holding it. Synced columns follow Project B; notes (after the insert), phone,
-- date_of_birth and therapist_id are Project A's and never touched (therapist_id is set on insert only,
-- when a booking copies the client). An older or equal state writes nothing; a newer one is written even
-- with the same content, so that the stored version moves with it. A row Project A created itself
-- (synced_from is null) is never written: conflict of kind id. An email another client holds is never
-- taken: conflict of kind email. A concurrent insert of that email still raises unique_violation
-- (clients_email_unique); the caller retries and then sees the holder here. Conflicts are recorded in
-- private.sync_conflicts, and a client written again resolves its open conflict (remember_outcomes). `notices`
-- names what synced_columns bounded on the way in (the functions log it by id).
create function public.upsert_synced_clients(p_clients jsonb, p_therapist_id uuid default null)
returns table (client_id uuid, outcome text, conflict text, other_client_id uuid, notices text[])
language plpgsql
security invoker
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
  'Writes Project B''s states of clients ([{id, profile, updated_at}]): only a newer state, never a client Project A created itself, never an email another client holds; records and resolves conflicts. One row per id: inserted, updated, unchanged or conflict (kind email or id), and the notices of what was bounded on the way in.';

revoke all on function public.upsert_synced_clients(jsonb, uuid) from public, anon, authenticated;
grant execute on function public.upsert_synced_clients(jsonb, uuid) to service_role;

-- One page of a backfill or reconcile in one statement: the clients Project B has (its JSON text passed
-- through unparsed), the ones it no longer has, and, for reconcile, the watermark to keep once they are
-- written. Answers the counts, the conflicts and the clients whose data was bounded on the way in (notices); a
-- page without absences does not call archive_synced_clients.
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

  return v_counts
    || jsonb_build_object('archived', v_archived,
                          'unchanged', (v_counts ->> 'unchanged')::integer + v_unchanged_absent,
                          'conflict_list', v_conflicts,
                          'notices', v_notices);
end;
$$;

comment on function public.apply_sync_page(jsonb, jsonb, text, timestamptz, uuid) is
  'Writes one page of a backfill or reconcile: Project B''s clients (its JSON passed through), the absent ones, and for reconcile the watermark to keep. Answers the counts, the conflicts and the clients bounded on the way in (notices).';

-- What is stored already, brought within the bounds (the version and the rest unchanged).
update public.clients c
   set full_name = m.full_name, source_attributes = m.source_attributes, updated_at = now()
  from public.clients s
  cross join lateral private.synced_columns(
    s.source_attributes || jsonb_build_object('name', s.full_name), s.source_updated_at) m
 where c.id = s.id and s.synced_from = 'project_b'
   and (m.full_name, m.source_attributes) is distinct from (s.full_name, s.source_attributes);
