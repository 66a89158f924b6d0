-- Project B: the changes since a watermark, for reconcile: profiles written and profiles deleted, in
-- (version, id) order, read through indexes so that a few changes among many clients are found without a scan.

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
