-- Project A: writing Project B's clients. Project B's clients arrive as Project B states them ({id, profile,
-- updated_at}, what its client_states and client_page answer) and are mapped here, in SQL, so a page passes
-- through the functions as one JSON text. The functions' login (client_sync) has no privilege on any table, and
-- no role it may take sees past row level security: what it calls here is a security definer, owned by the
-- tables' owner, with search_path pinned, executable by client_sync and service_role only.

-- Versions as Project A keeps them: a finite version no later than the time of writing (now()) plus the skew
-- is kept as it is; an infinite or later one becomes now(). The skew is client_sync.max_version_skew_seconds,
-- which the functions set on their connections (MAX_VERSION_SKEW_SECONDS); 60 s when unset, at most an hour.
-- Project B answers bad versions as the time of reading already; this guards what is stored whoever calls.
create function private.version_limit(p_read_at timestamptz) returns timestamptz
language sql
stable
as $$
  select p_read_at + make_interval(secs => least(greatest(coalesce(
    nullif(current_setting('client_sync.max_version_skew_seconds', true), '')::double precision, 60), 0), 3600))
$$;

create function private.kept_version(p_version timestamptz, p_read_at timestamptz) returns timestamptz
language sql
stable
as $$
  select case when p_version is null or (isfinite(p_version) and p_version <= private.version_limit(p_read_at))
              then p_version else p_read_at end
$$;

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

revoke all on function private.version_limit(timestamptz) from public;
revoke all on function private.kept_version(timestamptz, timestamptz) from public;
revoke all on function private.with_safe_avatar(jsonb) from public;
revoke all on function private.within_4kib(jsonb) from public;
revoke all on function private.synced_columns(jsonb, timestamptz, boolean) from public;
grant execute on function private.version_limit(timestamptz) to service_role;
grant execute on function private.kept_version(timestamptz, timestamptz) to service_role;
grant execute on function private.with_safe_avatar(jsonb) to service_role;
grant execute on function private.within_4kib(jsonb) to service_role;
grant execute on function private.synced_columns(jsonb, timestamptz, boolean) to service_role;

-- Writes Project B's states of clients: `p_clients` is a JSON array of {id, profile, updated_at}. One answer
-- row per distinct id: inserted | updated | unchanged | conflict, with the conflict's kind (email | id) and,
-- for an email, the client holding it. Synced columns follow Project B; notes (after the insert), phone,
-- date_of_birth and therapist_id are Project A's and never touched (therapist_id is set on insert only,
-- when a booking copies the client). An older or equal state writes nothing; a newer one is written even
-- with the same content, so that the stored version moves with it. A row Project A created itself
-- (synced_from is null) is never written: conflict of kind id; unless it was invited into Project B
-- (private.client_invites, 70_invites.sql), which makes it synced from then on. An email another synced
-- client holds is never taken: conflict of kind email. A concurrent insert of that email still raises unique_violation
-- (clients_synced_email_unique); the caller retries and then sees the holder here. A native client with the
-- email does not block the write: it becomes a link suggestion for its therapist (private.link_suggestions,
-- once per pair, never again after a rejection); a suggestion whose emails no longer match closes as stale (and
-- opens again when they match again), so reconcile keeps them current. Conflicts are recorded in
-- private.sync_conflicts, and a client written again resolves its open conflict (remember_outcomes). `notices`
-- names what synced_columns bounded on the way in (the functions log it by id).
create function public.upsert_synced_clients(p_clients jsonb, p_therapist_id uuid default null)
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

revoke all on function public.upsert_synced_clients(jsonb, uuid) from public, anon, authenticated;
grant execute on function public.upsert_synced_clients(jsonb, uuid) to service_role, client_sync;

-- Archives clients Project B no longer has: `p_absences` is a JSON array of {id, deleted_at} (the deletion
-- Project B recorded) or {id, absent_since} (when a read found no profile and no deletion is recorded).
-- Only synced, active clients whose stored state is older than the absence; never deleted, so their
-- sessions stay. A recorded deletion becomes the stored version, so that a state read before the deletion
-- and written after the archive cannot bring the client back; a profile that really returns is newer.
-- One answer row per id: archived or unchanged. Resolves the open conflicts of the absent clients.
create function public.archive_synced_clients(p_absences jsonb)
returns table (client_id uuid, outcome text)
language plpgsql
security definer
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

comment on function public.archive_synced_clients(jsonb) is
  'Archives the synced clients Project B no longer has ([{id, deleted_at or absent_since}]) whose stored state is older than the absence; never deletes them. One row per id: archived or unchanged.';

revoke all on function public.archive_synced_clients(jsonb) from public, anon, authenticated;
grant execute on function public.archive_synced_clients(jsonb) to service_role, client_sync;

-- sync_client's one client for a therapist, in one statement: checks the therapist, writes Project B's state
-- (`p_client`, or archives for `p_absence`), claims the client if nobody has (as a booking would), and answers
-- not_found, like create_session, when it is not (or no longer) the therapist's. Another therapist's client is
-- neither written nor locked, and an absence is applied only to an active client (an unknown or archived id has
-- nothing to archive; the caller's own archived client answers unchanged): every not_found costs what an unknown
-- id's does.
create function public.sync_client_as(p_claims jsonb, p_client_id uuid, p_client jsonb, p_absence jsonb)
returns jsonb
language plpgsql
security definer
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
  if private.resolved_client_id(p_client_id) <> p_client_id then
    -- A linked client's old id: Project B's state was read for the old id, so the caller syncs the new one.
    return jsonb_build_object('outcome', 'moved', 'client_id', private.resolved_client_id(p_client_id));
  end if;
  if private.held_elsewhere(p_client_id, v_uid) then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  if p_client is not null then
    select to_jsonb(u) into v_sync
      from public.upsert_synced_clients(jsonb_build_array(p_client || jsonb_build_object('id', p_client_id)), v_uid) u;
  elsif p_absence is not null and exists (select 1 from public.clients where id = p_client_id and status = 'active') then
    select to_jsonb(a) into v_sync
      from public.archive_synced_clients(jsonb_build_array(p_absence || jsonb_build_object('id', p_client_id))) a;
  end if;
  update public.clients set therapist_id = v_uid, updated_at = now()
   where id = p_client_id and therapist_id is null and status = 'active';
  select therapist_id into v_therapist from public.clients where id = p_client_id;
  if v_therapist is distinct from v_uid then
    return jsonb_build_object('outcome', 'not_found');
  end if;
  -- The caller's own client with nothing to archive (archived already) is unchanged.
  return jsonb_build_object('outcome', 'ok',
                            'sync', coalesce(v_sync, jsonb_build_object('client_id', p_client_id, 'outcome', 'unchanged')));
end;
$$;

comment on function public.sync_client_as(jsonb, uuid, jsonb, jsonb) is
  'sync_client''s one client for a therapist, in one statement: writes Project B''s state (or archives an active client for an absence), claims the client if nobody has, and answers ok with the write''s row, not_found or not_a_therapist; moved with the new id for an old id of the therapist''s linked client.';

revoke all on function public.sync_client_as(jsonb, uuid, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.sync_client_as(jsonb, uuid, jsonb, jsonb) to service_role, client_sync;
