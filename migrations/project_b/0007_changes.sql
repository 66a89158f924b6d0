-- Project B: the changes since a watermark, for reconcile: profiles written and profiles deleted, in
-- (version, id) order, read through indexes so that a few changes among many clients are found without a scan.

-- private.client_profile, generated from private.synced_profile_fields (still the one place that names the
-- fields) whenever that table changes: a static jsonb_build_object is a fraction of the cost of reading the
-- table for every client of a page.
create or replace function private.define_client_profile() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  execute format(
    'create or replace function private.client_profile(p public.profiles, p_email text) returns jsonb'
    ' language sql immutable set search_path = '''' as $f$ select jsonb_build_object(%s''email'', p_email) $f$',
    (select coalesce(string_agg(format('%L, p.%I, ', f.name, f.name), '' order by f.name), '')
       from private.synced_profile_fields f)
  );
  return null;
end;
$$;

revoke all on function private.define_client_profile() from public;

create trigger synced_profile_fields_define_client_profile
  after insert or update or delete or truncate on private.synced_profile_fields
  for each statement execute function private.define_client_profile();

update private.synced_profile_fields set name = name;  -- fires the trigger: defines it now

create index if not exists profiles_updated_at_id_idx on public.profiles (updated_at, id);
create index if not exists profile_deletions_deleted_at_id_idx on private.profile_deletions (deleted_at, id);

-- Up to `p_limit` changes after (p_since, p_since_id): clients written, as client_page's JSON, and clients
-- deleted (whose profile is still gone) as [{id, deleted_at}], then the (version, id) of the last change.
create function public.client_changes(p_since timestamptz, p_since_id uuid, p_limit integer)
returns table (clients jsonb, absences jsonb, last_version timestamptz, last_id uuid, count integer)
language sql
stable
security definer
set search_path = ''
as $$
  with bounded as (
    select least(greatest(p_limit, 0), 5000) as n,
           coalesce(p_since_id, '00000000-0000-0000-0000-000000000000'::uuid) as since_id
  ), changes as (
    (select p.id, private.client_profile(p, u.email) as profile, p.updated_at as version
       from public.profiles p
       join auth.users u on u.id = p.id
      where (p.updated_at, p.id) > (p_since, (select since_id from bounded))
      order by p.updated_at, p.id
      limit (select n from bounded))
    union all
    (select d.id, null, d.deleted_at
       from private.profile_deletions d
      where (d.deleted_at, d.id) > (p_since, (select since_id from bounded))
        and not exists (select 1 from public.profiles p where p.id = d.id)
      order by d.deleted_at, d.id
      limit (select n from bounded))
  ), page as (
    select * from changes order by version, id limit (select n from bounded)
  )
  select coalesce(jsonb_agg(jsonb_build_object('id', id, 'profile', profile, 'updated_at', version)
                            order by version, id) filter (where profile is not null), '[]'::jsonb),
         coalesce(jsonb_agg(jsonb_build_object('id', id, 'deleted_at', version)
                            order by version, id) filter (where profile is null), '[]'::jsonb),
         (array_agg(version order by version desc, id desc))[1],
         (array_agg(id order by version desc, id desc))[1],
         count(*)::integer
    from page
$$;

revoke all on function public.client_changes(timestamptz, uuid, integer) from public, anon, authenticated;
grant execute on function public.client_changes(timestamptz, uuid, integer) to service_role;

-- client_page of 0006 with its bounds as index conditions: `p_after is null or p.id > p_after` made every
-- page scan from the first id. Profile ids are random v4 UUIDs, so the nil UUID is never one.
create or replace function public.client_page(p_after uuid, p_limit integer, p_until uuid default null)
returns table (clients jsonb, last_id uuid, count integer)
language sql
stable
security definer
set search_path = ''
as $$
  with bounds as (
    select coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid) as after_id,
           coalesce(p_until, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid) as until_id
  ), page as (
    select p.id, private.client_profile(p, u.email) as profile, p.updated_at
      from bounds b
      join public.profiles p on p.id > b.after_id and p.id <= b.until_id
      join auth.users u on u.id = p.id and u.id > b.after_id and u.id <= b.until_id
     order by p.id
     limit least(greatest(p_limit, 0), 5000)
  )
  select coalesce(jsonb_agg(jsonb_build_object('id', id, 'profile', profile, 'updated_at', updated_at)
                            order by id), '[]'::jsonb),
         (array_agg(id order by id desc))[1], count(*)::integer
    from page
$$;
